-- Current releases (22.8 and later): ../006_activity.sql with microsecond
-- times and LowCardinality strings.

CREATE TABLE IF NOT EXISTS activity_1h (
    tenant_id String,
    window_start DateTime64(6, 'UTC'),
    source LowCardinality(String),
    capsule_id String,
    tx_type LowCardinality(String),
    author_id String,
    currency LowCardinality(String),
    meter LowCardinality(String),
    unit LowCardinality(String),
    events Int64,
    cost_usd Decimal(38, 9),
    quantity Decimal(38, 9),
    amount_cents Int64,
    row_id String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant_id, window_start, source, capsule_id, tx_type, author_id, currency, meter, unit, row_id);

CREATE TABLE IF NOT EXISTS activity_1h_staging (
    run_id String,
    epoch UInt64,
    tenant_id String,
    window_start DateTime64(6, 'UTC'),
    source LowCardinality(String),
    capsule_id String,
    tx_type LowCardinality(String),
    author_id String,
    currency LowCardinality(String),
    meter LowCardinality(String),
    unit LowCardinality(String),
    events Int64,
    cost_usd Decimal(38, 9),
    quantity Decimal(38, 9),
    amount_cents Int64,
    row_id String
) ENGINE = MergeTree
ORDER BY (run_id, epoch);

CREATE TABLE IF NOT EXISTS activity_1d (
    tenant_id String,
    window_start DateTime64(6, 'UTC'),
    source LowCardinality(String),
    capsule_id String,
    tx_type LowCardinality(String),
    author_id String,
    currency LowCardinality(String),
    meter LowCardinality(String),
    unit LowCardinality(String),
    events Int64,
    cost_usd Decimal(38, 9),
    quantity Decimal(38, 9),
    amount_cents Int64,
    row_id String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant_id, window_start, source, capsule_id, tx_type, author_id, currency, meter, unit, row_id);

CREATE TABLE IF NOT EXISTS activity_1d_staging (
    run_id String,
    epoch UInt64,
    tenant_id String,
    window_start DateTime64(6, 'UTC'),
    source LowCardinality(String),
    capsule_id String,
    tx_type LowCardinality(String),
    author_id String,
    currency LowCardinality(String),
    meter LowCardinality(String),
    unit LowCardinality(String),
    events Int64,
    cost_usd Decimal(38, 9),
    quantity Decimal(38, 9),
    amount_cents Int64,
    row_id String
) ENGINE = MergeTree
ORDER BY (run_id, epoch);
