-- Usage rollups the API reads. usage_1m is written by the pipeline's window
-- operator: one row per tenant × model × capsule × minute, plus additive
-- correction rows for late events (a new row_id, never an update), so
-- every reader sums. row_id names the emission deterministically, so a row
-- replayed after a crash collapses into its first copy (read with FINAL).
-- usage_1h and usage_1d are materialized views that add up usage_1m as it
-- is inserted.

CREATE TABLE IF NOT EXISTS usage_1m (
    tenant_id String,
    window_start DateTime,
    model String,
    provider String,
    capsule_id String,
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
ORDER BY (tenant_id, window_start, model, capsule_id, row_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_1h
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour_start)
ORDER BY (tenant_id, hour_start, model, provider, capsule_id)
AS SELECT
    tenant_id,
    toStartOfHour(window_start) AS hour_start,
    model,
    provider,
    capsule_id,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    sum(requests) AS requests,
    sum(capsule_runs) AS capsule_runs,
    sum(workflow_steps) AS workflow_steps
FROM usage_1m
GROUP BY tenant_id, hour_start, model, provider, capsule_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_1d
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day_start)
ORDER BY (tenant_id, day_start, model, provider, capsule_id)
AS SELECT
    tenant_id,
    toDate(window_start) AS day_start,
    model,
    provider,
    capsule_id,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    sum(requests) AS requests,
    sum(capsule_runs) AS capsule_runs,
    sum(workflow_steps) AS workflow_steps
FROM usage_1m
GROUP BY tenant_id, day_start, model, provider, capsule_id;
