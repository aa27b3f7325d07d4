-- Current releases (22.8 and later): the same tables as ../001_events.sql with
-- microsecond times (DateTime64), LowCardinality for repetitive strings, and
-- insert dedup tokens remembered per table, so a retried insert block is not
-- stored twice. Picked by somaflow when SELECT version() >= 22.8.

CREATE TABLE IF NOT EXISTS conversations (
    event_id String,
    tenant_id String,
    source LowCardinality(String),
    event_time DateTime64(6, 'UTC'),
    ingest_time DateTime64(6, 'UTC'),
    source_topic LowCardinality(String),
    source_partition Int32,
    source_offset Int64,
    user_id String,
    session_id String,
    capsule_id Nullable(String),
    provider LowCardinality(String),
    model LowCardinality(String),
    input_tokens Int64,
    output_tokens Int64,
    cached_input_tokens Int64,
    reasoning_tokens Int64,
    latency_ms Int64,
    status LowCardinality(String),
    message Nullable(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, toStartOfHour(event_time), event_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS policy_decisions (
    event_id String,
    tenant_id String,
    source LowCardinality(String),
    event_time DateTime64(6, 'UTC'),
    ingest_time DateTime64(6, 'UTC'),
    source_topic LowCardinality(String),
    source_partition Int32,
    source_offset Int64,
    user_id String,
    policy_id String,
    action LowCardinality(String),
    resource String,
    decision LowCardinality(String),
    reason Nullable(String),
    eval_us Int64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, toStartOfHour(event_time), event_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS capsule_executions (
    event_id String,
    tenant_id String,
    source LowCardinality(String),
    event_time DateTime64(6, 'UTC'),
    ingest_time DateTime64(6, 'UTC'),
    source_topic LowCardinality(String),
    source_partition Int32,
    source_offset Int64,
    capsule_id String,
    capsule_version String,
    run_id String,
    agent_id String,
    status LowCardinality(String),
    duration_ms Int64,
    tokens Int64,
    cost_usd Nullable(Decimal(38, 9))
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, toStartOfHour(event_time), event_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS workflow_executions (
    event_id String,
    tenant_id String,
    source LowCardinality(String),
    event_time DateTime64(6, 'UTC'),
    ingest_time DateTime64(6, 'UTC'),
    source_topic LowCardinality(String),
    source_partition Int32,
    source_offset Int64,
    workflow_id String,
    run_id String,
    step_id String,
    step_type LowCardinality(String),
    status LowCardinality(String),
    agent_pool LowCardinality(String),
    attempt Int64,
    duration_ms Int64,
    quality_score Nullable(Float64)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, toStartOfHour(event_time), event_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS marketplace_transactions (
    event_id String,
    tenant_id String,
    source LowCardinality(String),
    event_time DateTime64(6, 'UTC'),
    ingest_time DateTime64(6, 'UTC'),
    source_topic LowCardinality(String),
    source_partition Int32,
    source_offset Int64,
    capsule_id String,
    author_id String,
    tx_type LowCardinality(String),
    amount_cents Int64,
    currency LowCardinality(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, toStartOfHour(event_time), event_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS billing_events (
    event_id String,
    tenant_id String,
    source LowCardinality(String),
    event_time DateTime64(6, 'UTC'),
    ingest_time DateTime64(6, 'UTC'),
    source_topic LowCardinality(String),
    source_partition Int32,
    source_offset Int64,
    meter LowCardinality(String),
    quantity Decimal(38, 9),
    unit LowCardinality(String),
    idempotency_key Nullable(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, toStartOfHour(event_time), event_id)
SETTINGS non_replicated_deduplication_window = 1000;
