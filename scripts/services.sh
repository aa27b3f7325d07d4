#!/usr/bin/env bash
# The real servers somaflow's tests and development use: install when
# missing, start on test ports with their own data folders, wait until
# ready, stop. Nothing here is mocked.
#
#   scripts/services.sh deps                 build and test tools (mold linker, Prometheus, Chromium, npm)
#   scripts/services.sh start   [SERVICE…]   install if missing, start, wait until ready
#   scripts/services.sh stop    [SERVICE…]
#   scripts/services.sh status  [SERVICE…]
#
# Services:
#   kafka  the Kafka-compatible broker tansu 0.6 (crates.io), port 19092, durable
#          SQLite storage; built once (~15 min on 2 cores) into ~/.cache/somaflow/tansu
#   redis  Debian redis-server, port 16379
#   clickhouse  Debian clickhouse-server (18.16), HTTP port 18123, native 19000,
#          its own config and data under $RUN_DIR/clickhouse-<port>
# The embedded mode and its tests need no server.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN_DIR="${SOMAFLOW_SERVICES_DIR:-$ROOT/target/services}"
# Absolute, because services start from inside their own folders.
case "$RUN_DIR" in /*) ;; *) RUN_DIR="$PWD/$RUN_DIR" ;; esac
REDIS_PORT="${SOMAFLOW_REDIS_PORT:-16379}"
CLICKHOUSE_PORT="${SOMAFLOW_CLICKHOUSE_PORT:-18123}"
# The native protocol port only has to differ between instances.
CLICKHOUSE_TCP_PORT="${SOMAFLOW_CLICKHOUSE_TCP_PORT:-$((CLICKHOUSE_PORT + 877))}"
KAFKA_PORT="${SOMAFLOW_KAFKA_PORT:-19092}"
# sqlite (durable, survives a broker SIGKILL) or memory (faster; benchmarks).
KAFKA_STORAGE="${SOMAFLOW_KAFKA_STORAGE:-sqlite}"
TANSU_VERSION="0.6.0"
TANSU_ROOT="${SOMAFLOW_TANSU_ROOT:-$HOME/.cache/somaflow/tansu}"
ALL_SERVICES=(kafka redis clickhouse)

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }

apt_updated=""
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "need ${missing[*]} but apt-get is not available; install them by hand"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ -z "$apt_updated" ]; then
    log "apt-get update"
    $sudo apt-get update -qq >/dev/null || die "apt-get update failed"
    apt_updated=1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ${APT_EXTRA:-} "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# SIGTERM the process of a pid file (waking it if stopped) and wait up to
# `secs` for it to exit, so a restart can bind its port at once; then SIGKILL.
stop_pidfile() { # pidfile, seconds
  local pidfile="$1" secs="$2"
  [ -f "$pidfile" ] || return 0
  local pid; pid="$(cat "$pidfile")"
  kill -CONT "$pid" 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((secs * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

wait_until() { # description, seconds, command…
  local what="$1" secs="$2"; shift 2
  for _ in $(seq 1 $((secs * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "$what did not become ready within ${secs}s"
}

# --- kafka (tansu) -------------------------------------------------------------
tansu_bin() {
  local bin="$TANSU_ROOT/bin/tansu"
  if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "tansu $TANSU_VERSION" ]; then
    echo "$bin"; return 0
  fi
  if command -v tansu >/dev/null && [ "$(tansu --version 2>/dev/null)" = "tansu $TANSU_VERSION" ]; then
    command -v tansu; return 0
  fi
  return 1
}
kafka_install() {
  tansu_bin >/dev/null && return 0
  command -v cargo >/dev/null || die "cargo is needed to build tansu $TANSU_VERSION"
  log "building tansu $TANSU_VERSION from crates.io into $TANSU_ROOT (about 15 minutes on 2 cores; reused afterwards)"
  # dynostore and libsql are the storage engines (memory://, sqlite://); the
  # default features have none to run with.
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
    --root "$TANSU_ROOT" >"$RUN_DIR/tansu-install.log" 2>&1 \
    || die "cargo install tansu failed; see $RUN_DIR/tansu-install.log"
}
# `tansu topic list` retries forever against a dead broker: bound it.
kafka_ready() { timeout 3 "$(tansu_bin)" topic list --broker "tcp://127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1; }
kafka_start() {
  mkdir -p "$RUN_DIR/kafka"
  kafka_install
  if kafka_ready; then log "kafka already running on $KAFKA_PORT"; return 0; fi
  # SQLite storage keeps every message across a broker SIGKILL and restart.
  # tansu reads the sqlite:// path relative to its working directory.
  local bin; bin="$(tansu_bin)"
  local engine="sqlite://tansu.db"
  [ "$KAFKA_STORAGE" = memory ] && engine="memory://tansu/"
  (cd "$RUN_DIR/kafka" && exec nohup "$bin" broker \
    --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --storage-engine "$engine" \
    >"$RUN_DIR/kafka/broker.log" 2>&1 </dev/null) &
  echo $! >"$RUN_DIR/kafka/broker.pid"
  wait_until "kafka (tansu) on port $KAFKA_PORT" 30 kafka_ready
  log "kafka (tansu $TANSU_VERSION) ready on 127.0.0.1:$KAFKA_PORT, data in $RUN_DIR/kafka"
  kafka_topics
}
# The topics of config/cluster.toml (prefix soma., 8 partitions), so a worker
# can start right away; tests and benchmarks create their own prefixed topics
# with `somaflow topics create`.
KAFKA_TOPICS=(conversations policy_decisions capsule_executions workflow_executions
  marketplace_transactions billing_events dead_letters)
kafka_topics() {
  local bin existing; bin="$(tansu_bin)"
  existing="$(timeout 10 "$bin" topic list --broker "tcp://127.0.0.1:$KAFKA_PORT" 2>/dev/null || true)"
  for t in "${KAFKA_TOPICS[@]}"; do
    grep -q "\"name\":\"soma\.$t\"" <<<"$existing" && continue
    timeout 10 "$bin" topic create "soma.$t" --partitions 8 \
      --broker "tcp://127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1 \
      || log "could not create topic soma.$t (create it with: somaflow topics create --config config/cluster.toml)"
  done
}
kafka_stop() {
  stop_pidfile "$RUN_DIR/kafka/broker.pid" 10
  log "kafka stopped"
}
kafka_status() {
  if tansu_bin >/dev/null && kafka_ready; then echo "kafka: up (127.0.0.1:$KAFKA_PORT)"; else echo "kafka: down"; fi
}

# --- redis -------------------------------------------------------------------
redis_start() {
  apt_install redis-server
  mkdir -p "$RUN_DIR/redis"
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    log "redis already running on $REDIS_PORT"; return 0
  fi
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN_DIR/redis" \
    --daemonize yes --pidfile "$RUN_DIR/redis/redis.pid" --logfile "$RUN_DIR/redis/redis.log" \
    --save "" --appendonly no >/dev/null
  wait_until "redis on port $REDIS_PORT" 20 redis-cli -p "$REDIS_PORT" ping
  log "redis ready on 127.0.0.1:$REDIS_PORT"
}
redis_stop() {
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  log "redis stopped"
}
redis_status() {
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then echo "redis: up (127.0.0.1:$REDIS_PORT)"; else echo "redis: down"; fi
}

# --- clickhouse ------------------------------------------------------------------
clickhouse_ready() { curl -fsS "http://127.0.0.1:$CLICKHOUSE_PORT/?query=SELECT%201" >/dev/null 2>&1; }
clickhouse_start() {
  apt_install clickhouse-server clickhouse-client curl
  local dir="$RUN_DIR/clickhouse-$CLICKHOUSE_PORT"
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas"
  if clickhouse_ready; then log "clickhouse already running on $CLICKHOUSE_PORT"; return 0; fi
  # Our own config: test ports, this folder for data and logs, UTC. The
  # package's users.xml (user `default`, no password) is used as it is.
  cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>$dir/server.log</log><errorlog>$dir/server.err.log</errorlog><size>50M</size><count>2</count></logger>
    <http_port>$CLICKHOUSE_PORT</http_port>
    <tcp_port>$CLICKHOUSE_TCP_PORT</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>536870912</mark_cache_size>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>/etc/clickhouse-server/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
</yandex>
EOF
  (cd "$dir" && exec nohup /usr/sbin/clickhouse-server --config-file="$dir/config.xml" \
    >"$dir/stdout.log" 2>&1 </dev/null) &
  echo $! >"$dir/server.pid"
  wait_until "clickhouse on port $CLICKHOUSE_PORT (log: $dir/server.err.log)" 60 clickhouse_ready
  log "clickhouse ready on http://127.0.0.1:$CLICKHOUSE_PORT, data in $dir"
}
clickhouse_stop() {
  stop_pidfile "$RUN_DIR/clickhouse-$CLICKHOUSE_PORT/server.pid" 30
  log "clickhouse stopped"
}
clickhouse_status() {
  if clickhouse_ready; then echo "clickhouse: up (http://127.0.0.1:$CLICKHOUSE_PORT)"; else echo "clickhouse: down"; fi
}

# --- build dependencies --------------------------------------------------------
deps() {
  # mold: linking DataFusion dominates incremental builds (scripts/cc-link uses it when present).
  apt_install mold pkg-config
  # Prometheus 2.42 and promtool: the observability test scrapes somaflow with
  # the real server and checks the alert rules and /metrics with promtool.
  # Without recommends: no node exporter daemon.
  APT_EXTRA=--no-install-recommends apt_install prometheus
  # The console's browser tests: Debian's Chromium driven by playwright-core
  # from npm (scripts/console-tools.sh installs it with the lockfile).
  APT_EXTRA=--no-install-recommends apt_install chromium
  command -v npm >/dev/null || APT_EXTRA=--no-install-recommends apt_install nodejs npm
  command -v cargo >/dev/null || die "cargo is missing: install Rust (stable) with rustup"
}

cmd="${1:-}"; shift || true
services=("$@"); [ ${#services[@]} -eq 0 ] && services=("${ALL_SERVICES[@]}")
case "$cmd" in
  deps) deps ;;
  start|stop|status)
    for s in "${services[@]}"; do
      declare -F "${s}_${cmd}" >/dev/null || die "unknown service '$s' (known: ${ALL_SERVICES[*]})"
      "${s}_${cmd}"
    done ;;
  *) sed -n '2,17p' "$0"; exit 2 ;;
esac
