-- Hourly and daily usage per tenant × model × provider × price × cost source,
-- kept by the window operator at every checkpoint (decision 0102). Like
-- usage_1m they are published once per completed checkpoint: the sink stages
-- a checkpoint's rollup rows (tagged with its run and epoch) and the commit
-- copies them; a copy repeated after a crash inserts the same row_ids, which
-- ReplacingMergeTree collapses. Readers sum them with FINAL, which is cheap
-- here: a rollup holds one row per hour (or day) and group once merged,
-- whatever the traffic. The raw usage_1m is no longer read for these
-- questions.

CREATE TABLE IF NOT EXISTS rollup_1h (
    tenant_id String,
    window_start DateTime,
    model String,
    provider String,
    price_id String,
    cost_from String,
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
    window_start DateTime,
    model String,
    provider String,
    price_id String,
    cost_from String,
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
    window_start DateTime,
    model String,
    provider String,
    price_id String,
    cost_from String,
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
    window_start DateTime,
    model String,
    provider String,
    price_id String,
    cost_from String,
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
