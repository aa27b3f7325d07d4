#!/usr/bin/env bash
# The console's front-end tools, from npm with console/package-lock.json:
# uPlot (the charts, vendored into console/vendor and built into the binary)
# and playwright-core (drives Debian's Chromium in tests/console).
#
#   scripts/console-tools.sh          install (npm ci, when the lockfile changed),
#                                     check the vendored files equal the locked
#                                     package's, print Chromium's path
#   scripts/console-tools.sh vendor   copy uPlot from node_modules into console/vendor
#                                     (after changing its version in package.json)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CONSOLE="$ROOT/console"
die() { printf '[console-tools] error: %s\n' "$*" >&2; exit 1; }

command -v npm >/dev/null || die "npm is missing: apt-get install nodejs npm (scripts/services.sh deps does)"
stamp="$CONSOLE/node_modules/.lock-stamp"
if [ ! -f "$stamp" ] || ! cmp -s "$stamp" "$CONSOLE/package-lock.json"; then
  echo "[console-tools] npm ci in console/ (uplot, playwright-core)" >&2
  (cd "$CONSOLE" && npm ci --no-audit --no-fund --loglevel=error >&2)
  cp "$CONSOLE/package-lock.json" "$stamp"
fi

dist="$CONSOLE/node_modules/uplot/dist"
if [ "${1:-}" = vendor ]; then
  cp "$dist/uPlot.iife.min.js" "$dist/uPlot.min.css" "$CONSOLE/vendor/"
  cp "$CONSOLE/node_modules/uplot/LICENSE" "$CONSOLE/vendor/uPlot.LICENSE"
  echo "[console-tools] vendored uPlot $(node -p "require('$CONSOLE/node_modules/uplot/package.json').version")" >&2
  exit 0
fi
for f in uPlot.iife.min.js uPlot.min.css; do
  cmp -s "$dist/$f" "$CONSOLE/vendor/$f" \
    || die "console/vendor/$f differs from the locked npm package's; run scripts/console-tools.sh vendor"
done

chromium="${SOMAFLOW_CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] || die "Chromium is missing at $chromium: apt-get install chromium (scripts/services.sh deps does), or set SOMAFLOW_CHROMIUM"
echo "$chromium"
