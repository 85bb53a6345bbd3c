#!/usr/bin/env bash
# Installs what the widget's checks and browser tests need, when missing:
# web/node_modules (npm ci, from the npm registry only: no package here
# downloads a browser) and Debian's Chromium (apt-get, as root; anyone else
# is told the command to run).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v node >/dev/null || { echo "node is missing: install Node.js 20.19+ (apt-get install -y nodejs npm)" >&2; exit 1; }
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "web: npm ci"
  npm ci --no-audit --no-fund
fi

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "web: installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q chromium; }
  else
    echo "$chromium is missing; install it with: sudo apt-get update && sudo apt-get install -y chromium" >&2
    exit 1
  fi
fi
