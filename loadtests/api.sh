#!/usr/bin/env bash
# The query API under load (issue 6): p50/p95/p99 of /v1/usage (30 days,
# hourly, grouped by model), the monthly ledger and a 7-day forecast, with
# k6 at 50 concurrent clients, from ClickHouse and from the lake, over
# 10 M generated events (30 days of seasonal history, in time order).
#
#   loadtests/api.sh                 # load once (kept in target/bench-api), then measure
#   EVENTS=1000000 loadtests/api.sh  # a smaller data set
#   RELOAD=1 loadtests/api.sh        # load again
#   INGEST_RATE=1000 SOURCES=clickhouse loadtests/api.sh
#                                    # reads while live events flow in (each
#                                    # commit changes the tables under the answers;
#                                    # the events stay in the data set)
#   MODE=embedded loadtests/api.sh   # the embedded default (config/local.toml):
#                                    # loaded over HTTP, lake only, no services
#   LOAD_ONLY=1 MODE=embedded loadtests/api.sh   # load, measure nothing
#
# Needs the services (started here): Kafka (tansu), ClickHouse, Redis. For
# the 10 M load a broker on memory storage is much faster than the default
# SQLite one; start one first and point this script at its port:
#   SOMAFLOW_KAFKA_STORAGE=memory SOMAFLOW_KAFKA_PORT=19192 \
#     SOMAFLOW_SERVICES_DIR=target/bench-services scripts/services.sh start kafka
#   SOMAFLOW_KAFKA_PORT=19192 loadtests/api.sh
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${EVENTS:-10000000}"
VUS="${VUS:-50}"
DURATION="${DURATION:-30s}"
MODE="${MODE:-cluster}"
dir="$PWD/target/bench-api"
mkdir -p "$dir"
k6="$(scripts/k6.sh)"
if [ "$MODE" = cluster ]; then
  bash scripts/services.sh start kafka clickhouse redis
fi
cargo build --release --quiet
bin="$PWD/target/release/somaflow"
if [ -n "${CARGO_TARGET_DIR:-}" ]; then bin="$CARGO_TARGET_DIR/release/somaflow"; fi

secret="$(cat "$dir/secret" 2>/dev/null || true)"
if [ -z "$secret" ]; then
  secret="$(openssl rand -hex 32)"
  echo "$secret" > "$dir/secret"
fi
export SOMAFLOW_AUTH__SECRET="$secret"
# Latency, not the rate limit, is measured: 50 clients share one token.
export SOMAFLOW_AUTH__REQUESTS_PER_SECOND=0
port=18480
export SOMAFLOW_SERVER__LISTEN="127.0.0.1:$port"
base="http://127.0.0.1:$port"

if [ "$MODE" = embedded ]; then
  export SOMAFLOW_CONFIG="$PWD/config/local.toml"
  export SOMAFLOW_DATA_DIR="$dir/embedded-$EVENTS"
  SOURCES="${SOURCES:-lake}"
else
export SOMAFLOW_CONFIG="$PWD/config/platform.toml"
export SOMAFLOW_DATA_DIR="$dir/data"
export SOMAFLOW_KAFKA__BROKERS="127.0.0.1:${SOMAFLOW_KAFKA_PORT:-19092}"
export SOMAFLOW_KAFKA__TOPIC_PREFIX="benchapi${EVENTS}."
export SOMAFLOW_CLUSTER__GROUP_ID="benchapi${EVENTS}"
export SOMAFLOW_LAKE__URL="$dir/lake-$EVENTS"
export SOMAFLOW_CHECKPOINT__STORE="$dir/checkpoints-$EVENTS"
export SOMAFLOW_CLICKHOUSE__URL="http://127.0.0.1:18123"
export SOMAFLOW_CLICKHOUSE__DATABASE="bench_api_$EVENTS"
export SOMAFLOW_REDIS__URL="redis://127.0.0.1:16379/3"
export SOMAFLOW_POLICY__RULES="$PWD/config/policies.toml"
export SOMAFLOW_ACCOUNTING__PRICES="$PWD/config/prices.toml"
fi

if [ -n "${INGEST_RATE:-}" ]; then
  if [ ! -f "$dir/loaded-$EVENTS" ] || [ -n "${RELOAD:-}" ]; then
    echo "load the data set first: run loadtests/api.sh without INGEST_RATE" >&2
    exit 2
  fi
  # Live traffic goes through topics, a consumer group and checkpoints of
  # its own, into the same lake and ClickHouse: the worker then reads only
  # the live events, whatever the broker still holds of the load (a memory
  # broker forgets it when restarted, and the loaded group's offsets would
  # point past the end of the new topics).
  live="live$(date +%s)"
  export SOMAFLOW_KAFKA__TOPIC_PREFIX="benchapi${EVENTS}${live}."
  export SOMAFLOW_CLUSTER__GROUP_ID="benchapi${EVENTS}${live}"
  export SOMAFLOW_CHECKPOINT__STORE="$dir/checkpoints-$EVENTS-$live"
fi

# Topics and tenant metadata first: a worker refuses to start without its
# topics (both commands leave what exists alone).
if [ "$MODE" = cluster ]; then
  "$bin" topics create
  "$bin" tenants import config/tenants.csv --capsules config/capsules.csv
fi
"$bin" run > "$dir/worker.log" 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fs "$base/ready" >/dev/null 2>&1 && break
  sleep 1
done
admin="$("$bin" token --scopes admin --ttl 4h)"
sql() {
  curl -fs -H "authorization: Bearer $admin" -H 'content-type: application/json' \
    -d "{\"sql\": \"$1\"}" "$base/v1/sql" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"][0][0])'
}

marker="$dir/loaded-$EVENTS"
if [ "$MODE" = embedded ]; then marker="$dir/loaded-embedded-$EVENTS"; fi
if [ ! -f "$marker" ] || [ -n "${RELOAD:-}" ]; then
  echo "== loading $EVENTS events (30 days of history, in time order)"
  if [ "$MODE" = embedded ]; then
    SOMAFLOW_TOKEN="$("$bin" token --scopes admin --ttl 4h)" \
      "$bin" produce --to "$base" --count "$EVENTS" --history-days 30 --seed 6 --json > "$dir/produce.json"
  else
    "$bin" produce --to kafka --count "$EVENTS" --history-days 30 --seed 6 --json > "$dir/produce.json"
  fi
  # A billing event three minutes ahead moves the watermark past every window.
  tick="{\"specversion\":\"1.0\",\"id\":\"tick-$(date +%s)\",\"source\":\"/bench\",\"type\":\"soma.billing.v1\",\"time\":\"$(date -u -d '+3 min' +%Y-%m-%dT%H:%M:%SZ)\",\"tenantid\":\"tick\",\"data\":{\"meter\":\"tick\",\"quantity\":\"1\",\"unit\":\"tick\"}}"
  curl -fs -H "authorization: Bearer $admin" -H 'content-type: application/cloudevents+json' -d "$tick" "$base/v1/events" >/dev/null
  last=-1
  while true; do
    now="$(sql 'SELECT count(*) FROM conversations')"
    echo "   conversations in the lake: $now"
    [ "$now" = "$last" ] && [ "$now" != "0" ] && break
    last="$now"
    sleep 15
  done
  # The node merges the load's small files once their folders settle.
  if [ "$MODE" = embedded ]; then sleep 120; fi
  touch "$marker"
fi
if [ "$MODE" = embedded ]; then
  # Measure after, not during, the merges (lake.compaction_settle_secs).
  merges() { curl -fs "$base/metrics" | awk '/^somaflow_lake_compactions_total/ {s += $2} END {print s + 0}'; }
  last="$(merges)"
  while sleep 30; now="$(merges)"; [ "$now" != "$last" ]; do
    echo "   merges so far: $now"
    last="$now"
  done
fi
echo "== data: $(sql 'SELECT count(*) FROM conversations') conversations, $(sql 'SELECT count(*) FROM usage_1m') usage_1m rows, $(sql 'SELECT count(*) FROM rollup_1h') rollup_1h rows, $(sql 'SELECT count(*) FROM activity_1h') activity_1h rows"
if [ -n "${LOAD_ONLY:-}" ]; then exit 0; fi

tenant=tenant-0000
token="$("$bin" token --tenant "$tenant" --scopes usage:read,billing:read --ttl 4h)"
to="$(date -u +%Y-%m-%dT%H:%M:00Z)"
from="$(date -u -d '30 days ago' +%Y-%m-%dT%H:%M:00Z)"
period="$(date -u -d '15 days ago' +%Y-%m)"
declare -A targets=(
  [usage]="/v1/usage?meter=tokens&window=hour&group_by=model&from=$from&to=$to"
  [ledger]="/v1/billing/ledgers?tenant=$tenant&period=$period"
  [forecast]="/v1/forecasts?tenant=$tenant&meter=cost_usd&horizon=7d"
)
if [ -n "${INGEST_RATE:-}" ]; then
  echo "== producing $INGEST_RATE events/s of live traffic while measuring"
  live_from="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  live_to=kafka
  if [ "$MODE" = embedded ]; then live_to="$base"; export SOMAFLOW_TOKEN="$("$bin" token --scopes admin --ttl 4h)"; fi
  "$bin" produce --to "$live_to" --rate "$INGEST_RATE" --duration 1h --seed "$(date +%s)" \
    > "$dir/produce-live.log" 2>&1 &
  producer=$!
  trap 'kill $worker $producer 2>/dev/null || true' EXIT
  sleep 15
fi
for source in ${SOURCES:-clickhouse lake}; do
  for name in usage ledger forecast; do
    out="$dir/k6-$name-$source.json"
    BASE="$base" TARGET="${targets[$name]}&source=$source" TOKEN="$token" NAME="$name" \
      VUS="$VUS" DURATION="$DURATION" "$k6" run --quiet --summary-export "$out" loadtests/api-read.js >/dev/null \
      || echo "   (k6 reports a crossed threshold: see $out)"
    python3 - "$name" "$source" "$out" <<'PY'
import json, sys
name, source, path = sys.argv[1:]
m = json.load(open(path))["metrics"]
d = m["http_req_duration"]
failed = m["http_req_failed"]["value"]
print(f"{name:9} {source:10} {m['http_reqs']['rate']:8.1f} req/s  p50 {d['med']:7.1f} ms  p95 {d['p(95)']:7.1f} ms  p99 {d['p(99)']:7.1f} ms  failed {failed:.2%}")
PY
  done
done
if [ -n "${INGEST_RATE:-}" ]; then
  # The reads above only measured answers kept through commits if the live
  # events did land meanwhile.
  echo "== live conversations landed in the lake while measuring: $(sql "SELECT count(*) FROM conversations WHERE ingest_time >= TIMESTAMP '$live_from'")"
fi
