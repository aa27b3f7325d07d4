#!/usr/bin/env bash
# The real servers somaflow's tests and development use: install when
# missing, start on test ports with their own data folders, wait until
# ready, stop. Nothing here is mocked.
#
#   scripts/services.sh deps                 build tools (mold linker, C toolchain bits)
#   scripts/services.sh start   [SERVICE…]   install if missing, start, wait until ready
#   scripts/services.sh stop    [SERVICE…]
#   scripts/services.sh status  [SERVICE…]
#
# Services: redis (Debian redis-server, port 16379).
# The Kafka-compatible broker and ClickHouse join this list with the cluster
# mode (issues 3 and 4); the embedded mode and its tests need no server.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN_DIR="${SOMAFLOW_SERVICES_DIR:-$ROOT/target/services}"
REDIS_PORT="${SOMAFLOW_REDIS_PORT:-16379}"
ALL_SERVICES=(redis)

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
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

wait_until() { # description, seconds, command…
  local what="$1" secs="$2"; shift 2
  for _ in $(seq 1 $((secs * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "$what did not become ready within ${secs}s"
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

# --- build dependencies --------------------------------------------------------
deps() {
  # mold: linking DataFusion dominates incremental builds (scripts/cc-link uses it when present).
  apt_install mold pkg-config
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
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
