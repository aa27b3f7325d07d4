-- Current releases (22.8 and later): ../007_price_tiers.sql with
-- LowCardinality strings.

-- Cache writes, service tiers and rate cards (decision 0105): a conversation
-- may report the prompt tokens it wrote to the provider's cache (and of
-- those, the 1-hour writes) and the service tier that served it; the
-- accounting operator records the rate card it priced with (`price_tier`).
-- Usage rows sum the cache writes, and the rollups keep the rate card as a
-- key so a ledger prices each card's tokens at that card's rates. Rows
-- written before this read NULL in conversations' new columns and 0 and ''
-- in the usage and rollup tables'; readers coalesce both.

ALTER TABLE conversations
    ADD COLUMN cache_creation_input_tokens Nullable(Int64),
    ADD COLUMN cache_creation_1h_input_tokens Nullable(Int64),
    ADD COLUMN service_tier LowCardinality(Nullable(String)),
    ADD COLUMN price_tier LowCardinality(Nullable(String));

ALTER TABLE usage_1m
    ADD COLUMN cache_creation_input_tokens Int64,
    ADD COLUMN cache_creation_1h_input_tokens Int64;

ALTER TABLE usage_1m_staging
    ADD COLUMN cache_creation_input_tokens Int64,
    ADD COLUMN cache_creation_1h_input_tokens Int64;

ALTER TABLE rollup_1h
    ADD COLUMN price_tier LowCardinality(String),
    ADD COLUMN cache_creation_input_tokens Int64,
    ADD COLUMN cache_creation_1h_input_tokens Int64;

ALTER TABLE rollup_1h_staging
    ADD COLUMN price_tier LowCardinality(String),
    ADD COLUMN cache_creation_input_tokens Int64,
    ADD COLUMN cache_creation_1h_input_tokens Int64;

ALTER TABLE rollup_1d
    ADD COLUMN price_tier LowCardinality(String),
    ADD COLUMN cache_creation_input_tokens Int64,
    ADD COLUMN cache_creation_1h_input_tokens Int64;

ALTER TABLE rollup_1d_staging
    ADD COLUMN price_tier LowCardinality(String),
    ADD COLUMN cache_creation_input_tokens Int64,
    ADD COLUMN cache_creation_1h_input_tokens Int64;
