-- One table per event kind (docs/architecture.md, "The events"), for ClickHouse 18.16 and later.
-- ReplacingMergeTree with event_id in the sort key: a row a crash made
-- somaflow insert twice collapses to one; read with FINAL (or GROUP BY
-- event_id) for exact answers before merges have run. Sort keys start with
-- tenant and time, so one tenant's dashboard reads a small slice.
-- Times are DateTime (seconds, UTC): 18.16 has no DateTime64; the
-- `current/` variant keeps microseconds.

CREATE TABLE IF NOT EXISTS conversations (
    event_id String,
    tenant_id String,
    source String,
    event_time DateTime,
    ingest_time DateTime,
    source_topic String,
    source_partition Int32,
    source_offset Int64,
    user_id String,
    session_id String,
    capsule_id Nullable(String),
    provider String,
    model String,
    input_tokens Int64,
    output_tokens Int64,
    cached_input_tokens Int64,
    reasoning_tokens Int64,
    latency_ms Int64,
    status String,
    message Nullable(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, toStartOfHour(event_time), event_id);

CREATE TABLE IF NOT EXISTS policy_decisions (
    event_id String,
    tenant_id String,
    source String,
    event_time DateTime,
    ingest_time DateTime,
    source_topic String,
    source_partition Int32,
    source_offset Int64,
    user_id String,
    policy_id String,
    action String,
    resource String,
    decision String,
    reason Nullable(String),
    eval_us Int64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, toStartOfHour(event_time), event_id);

CREATE TABLE IF NOT EXISTS capsule_executions (
    event_id String,
    tenant_id String,
    source String,
    event_time DateTime,
    ingest_time DateTime,
    source_topic String,
    source_partition Int32,
    source_offset Int64,
    capsule_id String,
    capsule_version String,
    run_id String,
    agent_id String,
    status String,
    duration_ms Int64,
    tokens Int64,
    cost_usd Nullable(Decimal(38, 9))
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, toStartOfHour(event_time), event_id);

CREATE TABLE IF NOT EXISTS workflow_executions (
    event_id String,
    tenant_id String,
    source String,
    event_time DateTime,
    ingest_time DateTime,
    source_topic String,
    source_partition Int32,
    source_offset Int64,
    workflow_id String,
    run_id String,
    step_id String,
    step_type String,
    status String,
    agent_pool String,
    attempt Int64,
    duration_ms Int64,
    quality_score Nullable(Float64)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, toStartOfHour(event_time), event_id);

CREATE TABLE IF NOT EXISTS marketplace_transactions (
    event_id String,
    tenant_id String,
    source String,
    event_time DateTime,
    ingest_time DateTime,
    source_topic String,
    source_partition Int32,
    source_offset Int64,
    capsule_id String,
    author_id String,
    tx_type String,
    amount_cents Int64,
    currency String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, toStartOfHour(event_time), event_id);

CREATE TABLE IF NOT EXISTS billing_events (
    event_id String,
    tenant_id String,
    source String,
    event_time DateTime,
    ingest_time DateTime,
    source_topic String,
    source_partition Int32,
    source_offset Int64,
    meter String,
    quantity Decimal(38, 9),
    unit String,
    idempotency_key Nullable(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, toStartOfHour(event_time), event_id);
