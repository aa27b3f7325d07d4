#!/usr/bin/env bash
# The lake before and after compaction, on the same data in one run. An
# embedded node on config/local.toml takes live traffic (RATE events/s for
# DURATION) with compaction off and checkpoints every INTERVAL_MS, so each
# table's current hour gathers one small file per checkpoint, as a node that
# runs for a while does; the script counts the lake's Parquet files and times
# dashboard queries. Then the same node restarts with compaction on, merges
# every settled partition, deletes what it replaced, and the same queries run
# again. Their answers must be equal. Figures: docs/benchmarks.md,
# "Compaction".
#
#   RATE=2000 DURATION=120s INTERVAL_MS=250 RUNS=5 bash scripts/bench-compaction.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-2000}
DURATION=${DURATION:-120s}
INTERVAL_MS=${INTERVAL_MS:-250}
RUNS=${RUNS:-5}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET/release/somaflow}
[ -x "$BIN" ] || { echo "no release build at $BIN: run cargo build --release first" >&2; exit 1; }
DIR=$(mktemp -d "${TMPDIR:-/tmp}/bench-compaction.XXXXXX")
PORT=${PORT:-18480}
BASE="http://127.0.0.1:$PORT"
NODE=""
cleanup() { [ -n "$NODE" ] && kill "$NODE" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT

start() { # extra environment for the node
  env SOMAFLOW_DATA_DIR="$DIR" SOMAFLOW_SERVER__LISTEN="127.0.0.1:$PORT" "$@" \
    "$BIN" --config config/local.toml run >>"$DIR/node.log" 2>&1 &
  NODE=$!
  for _ in $(seq 1 100); do curl -sf "$BASE/ready" >/dev/null && return; sleep 0.2; done
  echo "the node did not get ready; its log: $DIR/node.log" >&2; tail -20 "$DIR/node.log" >&2; exit 1
}
stop() { kill -TERM "$NODE"; wait "$NODE" || true; NODE=""; }
sql() { curl -sf "$BASE/v1/sql" -H 'content-type: application/json' -d "$(jq -cn --arg q "$1" '{sql: $q}')"; }
files() { find "$DIR/lake" -name '*.parquet' | wc -l; }

QUERIES=(
  "SELECT tenant_id, model, sum(input_tokens + output_tokens) AS tokens FROM conversations GROUP BY tenant_id, model ORDER BY tenant_id, model"
  "SELECT date_trunc('hour', event_time) AS h, count(*) AS n FROM conversations WHERE tenant_id = 'tenant-0007' GROUP BY h ORDER BY h"
  "SELECT capsule_id, count(*) AS runs FROM capsule_executions WHERE event_time > now() - INTERVAL '7 days' GROUP BY capsule_id ORDER BY runs DESC, capsule_id LIMIT 20"
  "SELECT date, count(DISTINCT tenant_id) AS tenants FROM conversations GROUP BY date ORDER BY date"
  "SELECT date_trunc('day', window_start) AS d, sum(requests) AS requests FROM usage_1m GROUP BY d ORDER BY d"
)

# Median of RUNS timings of query $1, in ms; its answer goes to $2.
time_query() {
  local times=()
  for _ in $(seq 1 "$RUNS"); do
    local t0 t1
    t0=$(date +%s%N)
    sql "$1" >"$2"
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"
}

echo "== live traffic: $RATE events/s for $DURATION, checkpoints every $INTERVAL_MS ms (compaction off)" >&2
start SOMAFLOW_LAKE__COMPACTION=false SOMAFLOW_CHECKPOINT__INTERVAL_MS="$INTERVAL_MS"
"$BIN" produce --to "$BASE" --rate "$RATE" --duration "$DURATION" --concurrency 4 >&2
last=-1
while :; do # settled: the row count is above 0 and holds for 5 s
  now=$(sql "SELECT count(*) FROM conversations" | jq '.rows[0][0]')
  [ "$now" = "$last" ] && [ "$now" != 0 ] && break
  last=$now; sleep 5
done
before_files=$(files)
declare -a before_ms
for i in "${!QUERIES[@]}"; do before_ms[$i]=$(time_query "${QUERIES[$i]}" "$DIR/before-$i.json"); done
stop

echo "== compacting: the same node with compaction on" >&2
start SOMAFLOW_LAKE__COMPACTION=true SOMAFLOW_LAKE__COMPACTION_SETTLE_SECS=1 \
  SOMAFLOW_LAKE__COMPACTION_GRACE_SECS=6 SOMAFLOW_SQL__TIMEOUT_MS=5000 \
  SOMAFLOW_LAKE__COMPACTION_INTERVAL_MS=500
t0=$(date +%s)
prev=-1
while :; do # done: the file count holds for 10 s
  n=$(files)
  [ "$n" = "$prev" ] && break
  prev=$n; sleep 10
done
compact_secs=$(( $(date +%s) - t0 - 10 ))
after_files=$(files)
declare -a after_ms
for i in "${!QUERIES[@]}"; do
  after_ms[$i]=$(time_query "${QUERIES[$i]}" "$DIR/after-$i.json")
  cmp -s <(jq -S .rows "$DIR/before-$i.json") <(jq -S .rows "$DIR/after-$i.json") \
    || { echo "query $i answered differently after compaction:" >&2; diff <(jq -S -c ".rows[]" "$DIR/before-$i.json") <(jq -S -c ".rows[]" "$DIR/after-$i.json") | head -10 >&2; exit 1; }
done
stop

echo
echo "$RATE events/s for $DURATION, checkpoints every $INTERVAL_MS ms; $(nproc) cores; median of $RUNS runs per query; answers equal before and after"
echo "Parquet files: $before_files before, $after_files after (compaction took ~${compact_secs} s)"
echo
echo "| query | before | after | after / before |"
echo "| --- | ---: | ---: | ---: |"
for i in "${!QUERIES[@]}"; do
  ratio=$(awk -v a="${after_ms[$i]}" -v b="${before_ms[$i]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  echo "| ${QUERIES[$i]:0:70}… | ${before_ms[$i]} ms | ${after_ms[$i]} ms | $ratio |"
done
