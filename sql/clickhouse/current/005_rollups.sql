-- Current releases (22.8 and later): ../005_rollups.sql with microsecond
-- times and LowCardinality strings.

CREATE TABLE IF NOT EXISTS rollup_1h (
    tenant_id String,
    window_start DateTime64(6, 'UTC'),
    model LowCardinality(String),
    provider LowCardinality(String),
    price_id LowCardinality(String),
    cost_from LowCardinality(String),
    input_tokens Int64,
    output_tokens Int64,
    cached_input_tokens Int64,
    reasoning_tokens Int64,
    cost_usd Decimal(38, 9),
    requests Int64,
    capsule_runs Int64,
    workflow_steps Int64,
    row_id String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant_id, window_start, model, provider, price_id, cost_from, row_id);

CREATE TABLE IF NOT EXISTS rollup_1h_staging (
    run_id String,
    epoch UInt64,
    tenant_id String,
    window_start DateTime64(6, 'UTC'),
    model LowCardinality(String),
    provider LowCardinality(String),
    price_id LowCardinality(String),
    cost_from LowCardinality(String),
    input_tokens Int64,
    output_tokens Int64,
    cached_input_tokens Int64,
    reasoning_tokens Int64,
    cost_usd Decimal(38, 9),
    requests Int64,
    capsule_runs Int64,
    workflow_steps Int64,
    row_id String
) ENGINE = MergeTree
ORDER BY (run_id, epoch);

CREATE TABLE IF NOT EXISTS rollup_1d (
    tenant_id String,
    window_start DateTime64(6, 'UTC'),
    model LowCardinality(String),
    provider LowCardinality(String),
    price_id LowCardinality(String),
    cost_from LowCardinality(String),
    input_tokens Int64,
    output_tokens Int64,
    cached_input_tokens Int64,
    reasoning_tokens Int64,
    cost_usd Decimal(38, 9),
    requests Int64,
    capsule_runs Int64,
    workflow_steps Int64,
    row_id String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant_id, window_start, model, provider, price_id, cost_from, row_id);

CREATE TABLE IF NOT EXISTS rollup_1d_staging (
    run_id String,
    epoch UInt64,
    tenant_id String,
    window_start DateTime64(6, 'UTC'),
    model LowCardinality(String),
    provider LowCardinality(String),
    price_id LowCardinality(String),
    cost_from LowCardinality(String),
    input_tokens Int64,
    output_tokens Int64,
    cached_input_tokens Int64,
    reasoning_tokens Int64,
    cost_usd Decimal(38, 9),
    requests Int64,
    capsule_runs Int64,
    workflow_steps Int64,
    row_id String
) ENGINE = MergeTree
ORDER BY (run_id, epoch);
