-- Hourly and daily sums of capsule runs, marketplace transactions and
-- billing events per tenant × source table × the keys a ledger and the
-- marketplace group them by (decision 0103), kept by the window operator at
-- every checkpoint. Published like the usage rollups (005): the sink stages
-- a checkpoint's rows, the commit copies them, a repeated copy collapses in
-- ReplacingMergeTree, and readers sum them with FINAL.

CREATE TABLE IF NOT EXISTS activity_1h (
    tenant_id String,
    window_start DateTime,
    source String,
    capsule_id String,
    tx_type String,
    author_id String,
    currency String,
    meter String,
    unit String,
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
    window_start DateTime,
    source String,
    capsule_id String,
    tx_type String,
    author_id String,
    currency String,
    meter String,
    unit String,
    events Int64,
    cost_usd Decimal(38, 9),
    quantity Decimal(38, 9),
    amount_cents Int64,
    row_id String
) ENGINE = MergeTree
ORDER BY (run_id, epoch);

CREATE TABLE IF NOT EXISTS activity_1d (
    tenant_id String,
    window_start DateTime,
    source String,
    capsule_id String,
    tx_type String,
    author_id String,
    currency String,
    meter String,
    unit String,
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
    window_start DateTime,
    source String,
    capsule_id String,
    tx_type String,
    author_id String,
    currency String,
    meter String,
    unit String,
    events Int64,
    cost_usd Decimal(38, 9),
    quantity Decimal(38, 9),
    amount_cents Int64,
    row_id String
) ENGINE = MergeTree
ORDER BY (run_id, epoch);
