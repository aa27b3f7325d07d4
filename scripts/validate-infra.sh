#!/usr/bin/env bash
# Validates the deployment and observability files under infra/ with real
# tools (Docker is not available here, so nothing is run, only checked):
#
#   * infra/docker-compose.yml against the Compose specification's JSON schema
#     (check-jsonschema's vendored compose-spec), after YAML merge keys and
#     ${VAR:-default} interpolation; `docker compose config` too when a
#     compose plugin is installed;
#   * infra/k8s/*.yaml against the Kubernetes JSON schemas (kubernetes-validate,
#     strict, oldest and newest version it ships); KEDA's ScaledObject against
#     the CRD's fields; the references between the manifests;
#   * infra/grafana/*.json: parse, every panel/target/variable datasource uid
#     defined by provisioning/datasources/datasources.yml, PromQL parses
#     (promql-parser) and names only metrics pipeline/src/metrics.rs exports,
#     ClickHouse SQL avoids what 18.16 lacks and reads usage_1m with FINAL;
#   * infra/prometheus: YAML, runbook anchors in docs/operations.md, and with
#     promtool (Debian's `prometheus` package): check config, check rules,
#     test rules (alerts.test.yml), the dashboards' PromQL.
#
# Usage:
#   scripts/validate-infra.sh                      static checks
#   scripts/validate-infra.sh --clickhouse         also run every dashboard SQL query on a
#                                                  private ClickHouse (scripts/services.sh, port
#                                                  $SOMAFLOW_INFRA_CLICKHOUSE_PORT, default 18951),
#                                                  stopped afterwards
#   scripts/validate-infra.sh --clickhouse-url URL   … on an existing server (scratch database
#                                                  somaflow_infra_check, dropped afterwards)
#
# The Python tools are installed from PyPI into
# ${SOMAFLOW_CACHE:-$HOME/.cache/somaflow}/infra-venv when missing. Exits
# non-zero, listing every failure, when anything does not pass.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${SOMAFLOW_CACHE:-$HOME/.cache/somaflow}"
VENV="$CACHE/infra-venv"
REQUIREMENTS=(
  "check-jsonschema==0.39.0"
  "kubernetes-validate==1.37.0"
  "jsonschema==4.26.0"
  "PyYAML==6.0.4"
  "promql-parser==0.12.0"
)

die() { printf 'validate-infra: error: %s\n' "$*" >&2; exit 1; }

clickhouse_url=""
private_clickhouse=""
while [ $# -gt 0 ]; do
  case "$1" in
    --clickhouse) private_clickhouse=1 ;;
    --clickhouse-url) [ $# -ge 2 ] || die "--clickhouse-url needs a URL"; clickhouse_url="$2"; shift ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done

# --- the virtualenv -----------------------------------------------------------
python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 \
    && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python="$candidate"; break
  fi
done
[ -n "$python" ] || die "needs Python 3.11 or later (tomllib); install python3"

wanted="$(printf '%s\n' "${REQUIREMENTS[@]}")"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$wanted" ]; then
  echo "validate-infra: installing ${REQUIREMENTS[*]} into $VENV" >&2
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  "$python" -m venv "$VENV" || die "cannot create a virtualenv with $python (Debian: apt-get install python3-venv)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}" \
    || { rm -rf "$VENV"; die "pip could not install ${REQUIREMENTS[*]} from PyPI"; }
  printf '%s\n' "$wanted" > "$VENV/.requirements"
fi

promtool="$(command -v promtool || true)"
echo "validate-infra: tools"
"$VENV/bin/pip" list --disable-pip-version-check --format=freeze 2>/dev/null \
  | grep -iE '^(check-jsonschema|kubernetes-validate|jsonschema|pyyaml|promql-parser)==' | sed 's/^/  /'
if [ -n "$promtool" ]; then
  echo "  $("$promtool" --version 2>&1 | head -1)"
else
  echo "  promtool: not installed (apt-get install prometheus); its checks are skipped"
fi

# --- an optional private ClickHouse for the SQL of the dashboards ---------------
services_dir=""
cleanup() {
  if [ -n "$services_dir" ]; then
    SOMAFLOW_SERVICES_DIR="$services_dir" SOMAFLOW_CLICKHOUSE_PORT="$ch_port" \
      "$ROOT/scripts/services.sh" stop clickhouse >/dev/null 2>&1 || true
    rm -rf "$services_dir"
  fi
}
trap cleanup EXIT
if [ -n "$private_clickhouse" ]; then
  ch_port="${SOMAFLOW_INFRA_CLICKHOUSE_PORT:-18951}"
  services_dir="$(mktemp -d)"
  SOMAFLOW_SERVICES_DIR="$services_dir" SOMAFLOW_CLICKHOUSE_PORT="$ch_port" \
    "$ROOT/scripts/services.sh" start clickhouse \
    || die "could not start a ClickHouse on port $ch_port (scripts/services.sh start clickhouse)"
  clickhouse_url="http://127.0.0.1:$ch_port"
fi

args=(--root "$ROOT" --check-jsonschema "$VENV/bin/check-jsonschema")
[ -n "$promtool" ] && args+=(--promtool "$promtool")
[ -n "$clickhouse_url" ] && args+=(--clickhouse-url "$clickhouse_url")
"$VENV/bin/python" "$ROOT/scripts/validate_infra.py" "${args[@]}"
