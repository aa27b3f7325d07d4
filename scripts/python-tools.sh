#!/usr/bin/env bash
# Prints the path of a Python with the PyPI tools the tests drive somaflow
# with: the CloudEvents SDK (both content modes, HTTP and Kafka),
# schemathesis (the OpenAPI contract), chdb-core (ClickHouse 26 in process,
# for the current DDL and SQL), DuckDB (the side-by-side benchmark),
# LiteLLM (the peer the price catalog is checked against) and statsmodels
# (the forecasting peer of scripts/bench-forecast-real.sh).
# Installed into ~/.cache/somaflow/python-tools on first use (~40 s), reused
# afterwards.
set -euo pipefail
dir="${SOMAFLOW_CACHE:-$HOME/.cache/somaflow}/python-tools"
# Tests running at once may all ask on a new machine: one installs, the
# others wait for it.
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
want="cloudevents==2.2.0 schemathesis==4.32.5 chdb-core==26.9.0 duckdb==2.0.1 litellm==1.110.2 statsmodels==0.15.0"
if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.installed" 2>/dev/null)" != "$want" ]; then
  echo "[python-tools] installing $want into $dir" >&2
  rm -rf "$dir"
  python3 -m venv "$dir" >&2
  # shellcheck disable=SC2086
  "$dir/bin/pip" install --quiet $want >&2
  echo "$want" > "$dir/.installed"
fi
echo "$dir/bin/python"
