#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every unit and integration
# test (the integration tests start real `somaflow` processes). Servers a
# test needs are started through scripts/services.sh (the Kafka tests start
# the broker themselves, building it on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== import cycles between modules"
python3 scripts/import-cycles.py
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
