#!/usr/bin/env bash
# The console's figures (docs/benchmarks.md): an embedded release node on
# config/local.toml seeded with EVENTS generated events over 30 days, then
#   1. time to interactive of each console page (5 cold loads each),
#   2. HTTP ingest throughput (`somaflow produce`, as fast as accepted, for
#      SECONDS) alternately without and with five open consoles, twice.
# Usage: scripts/bench-console.sh [EVENTS] [SECONDS]   (defaults 10000000, 30)
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${1:-10000000}"
SECONDS_EACH="${2:-30}"
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/somaflow"
SCRATCH="$PWD/target/bench-console"
PORT=18490
URL="http://127.0.0.1:$PORT"

cargo build --release --quiet
CHROMIUM="$(bash scripts/console-tools.sh)"
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH"
export SOMAFLOW_DATA_DIR="$SCRATCH/data" SOMAFLOW_SERVER__LISTEN="127.0.0.1:$PORT"
cp config/tenants.csv config/capsules.csv "$SCRATCH/"
export SOMAFLOW_ENRICH__TENANTS="$SCRATCH/tenants.csv" SOMAFLOW_ENRICH__CAPSULES="$SCRATCH/capsules.csv"
"$BIN" run --config config/local.toml > "$SCRATCH/node.log" 2>&1 &
NODE=$!
CONSOLES_PID=""
trap 'kill $NODE ${CONSOLES_PID:-} 2>/dev/null || true' EXIT
until curl -sf "$URL/ready" >/dev/null; do sleep 0.5; done

echo "# $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u +%F), $(chromium --version 2>/dev/null | head -1)"
echo "## seeding $EVENTS events over 30 days"
"$BIN" produce --to "$URL" --count "$EVENTS" --history-days 30 --concurrency 4 --json > "$SCRATCH/seed.json"
python3 -c "import json; r=json.load(open('$SCRATCH/seed.json')); print(f\"accepted {r['accepted']:,} in {r['elapsed_secs']:.0f} s\")"
sql() { curl -s "$URL/v1/sql" -H 'content-type: application/json' -d "{\"sql\": \"$1\"}"; }
# Settled: every conversation committed and counted in a closed usage minute.
for _ in $(seq 1 600); do
  answer="$(sql 'SELECT (SELECT count(*) FROM conversations) = (SELECT sum(requests) FROM usage_1m) AS settled, (SELECT count(*) FROM conversations) AS n')"
  case "$answer" in *'[true,'*) break ;; esac
  sleep 2
done
echo "settled: $answer"
echo "lake files: $(find "$SCRATCH/data/lake" -name '*.parquet' | wc -l), $(du -sh "$SCRATCH/data/lake" | cut -f1)"

echo "## time to interactive (navigation to the first data drawn), 5 cold loads per page"
(cd console && BASE="$URL" CHROMIUM="$CHROMIUM" RUNS=5 node tests/console.bench.mjs tti)

# CPU seconds (user + system) of a process, and of every Chromium process.
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }
browser_cpu() { for p in $(pgrep -f chromium); do cpu "$p"; done | awk '{s += $1} END {print s + 0}'; }
throughput() {
  local node_before browser_before rate
  node_before="$(cpu $NODE)"; browser_before="$(browser_cpu)"
  rate="$("$BIN" produce --to "$URL" --duration "${SECONDS_EACH}s" --concurrency 4 --seed "$1" --json \
    | python3 -c "import json,sys; r=json.load(sys.stdin); print(f\"{r['accepted']/r['elapsed_secs']:,.0f}\")")"
  # Chromium's count is 0 without consoles (its processes may end mid-window).
  echo "$rate events/s; CPU s: somaflow $(echo "$(cpu $NODE) - $node_before" | bc), Chromium $(echo "$(browser_cpu) $browser_before" | awk '{d = $1 - $2; print (d > 0 ? d : 0)}')"
}
echo "## HTTP ingest, events/s accepted over ${SECONDS_EACH} s"
for round in 1 2; do
  echo "without consoles: $(throughput $((100 + round)))"
  (cd console && BASE="$URL" CHROMIUM="$CHROMIUM" CONSOLES=5 node tests/console.bench.mjs consoles > "$SCRATCH/consoles.log" 2>&1) &
  CONSOLES_PID=$!
  until grep -q open "$SCRATCH/consoles.log" 2>/dev/null; do sleep 1; done
  echo "with 5 consoles:  $(throughput $((200 + round)))"
  pkill -TERM -P "$CONSOLES_PID" 2>/dev/null || true
  wait "$CONSOLES_PID" 2>/dev/null || true
  CONSOLES_PID=""
done
