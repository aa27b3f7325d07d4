#!/usr/bin/env bash
# somaflow against DuckDB (PyPI, 2 threads) on the same lake files, in one
# run: five dashboard queries through POST /v1/sql, and the usage and ledger
# endpoints' questions (answer cache off: every answer computed; DuckDB
# asked the same question in SQL over the raw tables). Answers are checked
# equal; times are medians of RUNS (scripts/bench_sql.py).
#
#   scripts/bench-sql.sh                 # 10 M events, loaded once by loadtests/api.sh (MODE=embedded)
#   EVENTS=1000000 scripts/bench-sql.sh  # a smaller data set
#   ROLLUPS=false scripts/bench-sql.sh   # somaflow without its rollups (sql.rollups)
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${EVENTS:-10000000}"
RUNS="${RUNS:-5}"
dir="$PWD/target/bench-api"
if [ ! -f "$dir/loaded-embedded-$EVENTS" ]; then
  echo "== loading $EVENTS events into an embedded node first (loadtests/api.sh)"
  LOAD_ONLY=1 MODE=embedded EVENTS="$EVENTS" bash loadtests/api.sh
fi
python="$(bash scripts/python-tools.sh)"
cargo build --release --quiet
bin="$PWD/target/release/somaflow"
if [ -n "${CARGO_TARGET_DIR:-}" ]; then bin="$CARGO_TARGET_DIR/release/somaflow"; fi

export SOMAFLOW_CONFIG="$PWD/config/local.toml"
export SOMAFLOW_DATA_DIR="$dir/embedded-$EVENTS"
export SOMAFLOW_AUTH__SECRET="$(cat "$dir/secret")"
export SOMAFLOW_AUTH__REQUESTS_PER_SECOND=0
export SOMAFLOW_SQL__CACHE_ROWS=0
export SOMAFLOW_SQL__ROLLUPS="${ROLLUPS:-true}"
port=18481
export SOMAFLOW_SERVER__LISTEN="127.0.0.1:$port"
base="http://127.0.0.1:$port"
"$bin" run > "$dir/bench-sql-node.log" 2>&1 &
node=$!
trap 'kill $node 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fs "$base/ready" >/dev/null 2>&1 && break
  sleep 1
done
token="$("$bin" token --scopes admin --ttl 2h)"
echo "== $EVENTS events, $(nproc) cores, sql.rollups=${ROLLUPS:-true}, $RUNS runs each"
"$python" scripts/bench_sql.py "$base" "$token" "$SOMAFLOW_DATA_DIR/lake" tenant-0000 "$RUNS"
