-- Current releases (22.8 and later): ../002_dead_letters.sql with microsecond
-- times and insert dedup tokens. Picked when SELECT version() >= 22.8.

CREATE TABLE IF NOT EXISTS dead_letters (
    tenant_id String,
    event_id String,
    stage LowCardinality(String),
    reason String,
    raw String,
    ingest_time DateTime64(6, 'UTC'),
    source_topic LowCardinality(String),
    source_partition Int32,
    source_offset Int64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ingest_time)
ORDER BY (tenant_id, source_topic, source_partition, source_offset, stage, event_id)
SETTINGS non_replicated_deduplication_window = 1000;
