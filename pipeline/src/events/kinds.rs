//! The six event kinds of the platform (docs/architecture.md, "The events"): CloudEvents `type`,
//! table name and the fields of `data`, one declaration each.

use super::fields::{FieldSpec, FieldType::*, FieldValue, field};

/// One kind of platform event; each has its own table and Arrow schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Conversation,
    PolicyDecision,
    CapsuleRun,
    WorkflowStep,
    MarketplaceTx,
    Billing,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Conversation,
        EventKind::PolicyDecision,
        EventKind::CapsuleRun,
        EventKind::WorkflowStep,
        EventKind::MarketplaceTx,
        EventKind::Billing,
    ];

    /// The CloudEvents `type` attribute.
    pub fn type_name(self) -> &'static str {
        match self {
            EventKind::Conversation => "soma.conversation.v1",
            EventKind::PolicyDecision => "soma.policy_decision.v1",
            EventKind::CapsuleRun => "soma.capsule_run.v1",
            EventKind::WorkflowStep => "soma.workflow_step.v1",
            EventKind::MarketplaceTx => "soma.marketplace_tx.v1",
            EventKind::Billing => "soma.billing.v1",
        }
    }

    /// The table (lake folder, ClickHouse table, SQL name).
    pub fn table(self) -> &'static str {
        match self {
            EventKind::Conversation => "conversations",
            EventKind::PolicyDecision => "policy_decisions",
            EventKind::CapsuleRun => "capsule_executions",
            EventKind::WorkflowStep => "workflow_executions",
            EventKind::MarketplaceTx => "marketplace_transactions",
            EventKind::Billing => "billing_events",
        }
    }

    pub fn from_type_name(name: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.type_name() == name)
    }

    pub fn from_table(table: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.table() == table)
    }

    /// The fields of `data`, in column order.
    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            EventKind::Conversation => CONVERSATION,
            EventKind::PolicyDecision => POLICY_DECISION,
            EventKind::CapsuleRun => CAPSULE_RUN,
            EventKind::WorkflowStep => WORKFLOW_STEP,
            EventKind::MarketplaceTx => MARKETPLACE_TX,
            EventKind::Billing => BILLING,
        }
    }

    /// Columns the platform operators fill in after decode (enrich, policy,
    /// accounting), appended after the `data` fields; decode leaves them null.
    pub fn derived_fields(self) -> &'static [FieldSpec] {
        match self {
            EventKind::Conversation => DERIVED_CONVERSATION,
            EventKind::CapsuleRun | EventKind::MarketplaceTx => DERIVED_CAPSULE,
            _ => DERIVED_COMMON,
        }
    }

    /// Rules between fields that a per-field type cannot express.
    pub fn check(self, values: &[FieldValue<'_>]) -> Result<(), (&'static str, String)> {
        if self != EventKind::Conversation {
            return Ok(());
        }
        let get = |name: &str| {
            CONVERSATION
                .iter()
                .position(|f| f.name == name)
                .and_then(|i| values[i].as_int())
                .unwrap_or(0)
        };
        // OpenAI usage convention: totals include their cached/reasoning parts.
        let (input, cached) = (get("input_tokens"), get("cached_input_tokens"));
        if cached > input {
            return Err((
                "cached_input_tokens",
                format!(
                    "{cached} exceeds input_tokens {input}; input_tokens must include cached tokens"
                ),
            ));
        }
        let written = get("cache_creation_input_tokens");
        if cached.saturating_add(written) > input {
            return Err((
                "cache_creation_input_tokens",
                format!(
                    "{written} plus cached_input_tokens {cached} exceeds input_tokens {input}; \
                     input_tokens must include cache reads and writes"
                ),
            ));
        }
        let written_1h = get("cache_creation_1h_input_tokens");
        if written_1h > written {
            return Err((
                "cache_creation_1h_input_tokens",
                format!(
                    "{written_1h} exceeds cache_creation_input_tokens {written}; \
                     the 1-hour writes are part of the cache writes"
                ),
            ));
        }
        let (output, reasoning) = (get("output_tokens"), get("reasoning_tokens"));
        if reasoning > output {
            return Err((
                "reasoning_tokens",
                format!(
                    "{reasoning} exceeds output_tokens {output}; output_tokens must include reasoning tokens"
                ),
            ));
        }
        Ok(())
    }
}

const CONVERSATION: &[FieldSpec] = &[
    field("user_id", Str),
    field("session_id", Str),
    field("capsule_id", OptStr),
    field("provider", Str),
    field("model", Str),
    field("input_tokens", Count),
    field("output_tokens", Count),
    field("cached_input_tokens", Count),
    field("reasoning_tokens", Count),
    // Prompt tokens written to the provider's cache (inside input_tokens),
    // and of those, the ones written for 1 hour (Anthropic).
    field("cache_creation_input_tokens", OptCount),
    field("cache_creation_1h_input_tokens", OptCount),
    // How the provider served the call: standard (or OpenAI's `default`,
    // `auto`, `scale`), batch, flex or priority; absent = standard.
    field("service_tier", OptEnum(SERVICE_TIERS)),
    field("latency_ms", Count),
    field("status", Str),
    field("message", OptStr),
    // A cost the producer computed; kept beside ours and billed when present.
    field("cost_usd", OptDecimal),
];

/// Tenant metadata (enrich) and the strongest policy decision (policy).
const DERIVED_COMMON: &[FieldSpec] = &[
    field("tenant_plan", OptStr),
    field("tenant_region", OptStr),
    field("tenant_monthly_budget_usd", OptDecimal),
    field("policy_verdict", OptStr),
];

/// Plus capsule metadata, for kinds that name a capsule.
const DERIVED_CAPSULE: &[FieldSpec] = &[
    field("tenant_plan", OptStr),
    field("tenant_region", OptStr),
    field("tenant_monthly_budget_usd", OptDecimal),
    field("policy_verdict", OptStr),
    field("capsule_author_id", OptStr),
    field("capsule_price_usd", OptDecimal),
];

/// Plus our rated cost and the price it was rated with (accounting).
const DERIVED_CONVERSATION: &[FieldSpec] = &[
    field("tenant_plan", OptStr),
    field("tenant_region", OptStr),
    field("tenant_monthly_budget_usd", OptDecimal),
    field("policy_verdict", OptStr),
    field("capsule_author_id", OptStr),
    field("capsule_price_usd", OptDecimal),
    field("rated_cost_usd", OptDecimal),
    field("price_id", OptStr),
    // The rate card of the price: `standard`, `batch_above_200k`, …
    field("price_tier", OptStr),
];

/// The values of a conversation's `service_tier`.
pub const SERVICE_TIERS: &[&str] = &[
    "standard", "default", "auto", "scale", "batch", "flex", "priority",
];

const POLICY_DECISION: &[FieldSpec] = &[
    field("user_id", Str),
    field("policy_id", Str),
    field("action", Str),
    field("resource", Str),
    field("decision", Enum(&["allow", "deny", "redact", "flag"])),
    field("reason", OptStr),
    field("eval_us", Count),
];

const CAPSULE_RUN: &[FieldSpec] = &[
    field("capsule_id", Str),
    field("capsule_version", Str),
    field("run_id", Str),
    field("agent_id", Str),
    field("status", Str),
    field("duration_ms", Count),
    field("tokens", Count),
    field("cost_usd", OptDecimal),
];

const WORKFLOW_STEP: &[FieldSpec] = &[
    field("workflow_id", Str),
    field("run_id", Str),
    field("step_id", Str),
    field("step_type", Str),
    field("status", Str),
    field("agent_pool", Str),
    field("attempt", Count),
    field("duration_ms", Count),
    field("quality_score", OptFloat),
];

const MARKETPLACE_TX: &[FieldSpec] = &[
    field("capsule_id", Str),
    field("author_id", Str),
    field(
        "tx_type",
        Enum(&["purchase", "install", "refund", "payout"]),
    ),
    field("amount_cents", Int),
    field("currency", Str),
];

const BILLING: &[FieldSpec] = &[
    field("meter", Str),
    field("quantity", Decimal),
    field("unit", Str),
    field("idempotency_key", OptStr),
];
