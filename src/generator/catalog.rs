//! What the generated platform is made of: real model names with their
//! public list prices, capsules and their authors, agent pools.

/// A model with its public list price in USD per 1M tokens.
#[derive(Debug, Clone, Copy)]
pub struct Model {
    pub provider: &'static str,
    pub name: &'static str,
    pub input_per_m: f64,
    pub cached_input_per_m: f64,
    pub output_per_m: f64,
    /// Whether the model reports reasoning tokens (counted inside output).
    pub reasons: bool,
    /// Relative share of traffic.
    pub weight: f64,
}

const fn model(
    provider: &'static str,
    name: &'static str,
    input_per_m: f64,
    cached_input_per_m: f64,
    output_per_m: f64,
    reasons: bool,
    weight: f64,
) -> Model {
    Model {
        provider,
        name,
        input_per_m,
        cached_input_per_m,
        output_per_m,
        reasons,
        weight,
    }
}

/// Public list prices (USD per 1M tokens: input, cached input, output).
pub const MODELS: &[Model] = &[
    model("openai", "gpt-4o", 2.50, 1.25, 10.00, false, 18.0),
    model("openai", "gpt-4o-mini", 0.15, 0.075, 0.60, false, 30.0),
    model("openai", "o3", 2.00, 0.50, 8.00, true, 5.0),
    model("openai", "o4-mini", 1.10, 0.275, 4.40, true, 8.0),
    model(
        "anthropic",
        "claude-sonnet-4",
        3.00,
        0.30,
        15.00,
        true,
        14.0,
    ),
    model(
        "anthropic",
        "claude-3-5-haiku",
        0.80,
        0.08,
        4.00,
        false,
        9.0,
    ),
    model("google", "gemini-2.5-pro", 1.25, 0.31, 10.00, true, 6.0),
    model("google", "gemini-2.5-flash", 0.30, 0.075, 2.50, true, 10.0),
];

pub const AGENT_POOLS: &[&str] = &["general", "coding", "research", "browser", "data"];

pub const STEP_TYPES: &[&str] = &[
    "plan",
    "tool_call",
    "llm_call",
    "review",
    "approval",
    "deploy",
];

pub const POLICIES: &[(&str, &str, &str)] = &[
    ("pol-pii-egress", "send_message", "channel:external"),
    ("pol-model-allowlist", "invoke_model", "model"),
    ("pol-data-residency", "read_dataset", "dataset:eu"),
    ("pol-spend-cap", "start_capsule", "capsule"),
    ("pol-tool-sandbox", "exec_tool", "tool:shell"),
];

pub const BILLING_METERS: &[(&str, &str)] = &[
    ("storage_gb_hours", "GB-hour"),
    ("vector_queries", "query"),
    ("browser_minutes", "minute"),
    ("egress_gb", "GB"),
];

pub const MESSAGES: &[&str] = &[
    "Summarise the attached quarterly report in five bullet points.",
    "Draft a reply to the customer and cc jane.doe@example.com.",
    "Refactor the payment module and add tests.",
    "Call me back at +1 415 555 0132 about the invoice.",
    "Find the three most cited papers on retrieval augmentation.",
    "Charge card 4111 1111 1111 1111 for the renewal.",
    "Translate the onboarding guide to German.",
];
