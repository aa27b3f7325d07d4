-- Records somaflow could not process, or that ClickHouse refused: the raw
-- bytes (or the refused row as JSON), the stage and the reason. A record's
-- identity is where it was read from plus the stage, so a replay after a
-- crash collapses into the first copy (read with FINAL).

CREATE TABLE IF NOT EXISTS dead_letters (
    tenant_id String,
    event_id String,
    stage String,
    reason String,
    raw String,
    ingest_time DateTime,
    source_topic String,
    source_partition Int32,
    source_offset Int64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ingest_time)
ORDER BY (tenant_id, source_topic, source_partition, source_offset, stage, event_id);
