#!/usr/bin/env bash
# Checks and unit-tests the alerting rules with promtool, which needs no
# Prometheus server. promtool comes with Debian's prometheus package: when
# it is missing, it is installed (apt-get, as root; anyone else is told the
# command to run), as web/scripts/deps.sh does for Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "deploy: installing Debian's prometheus (for promtool)"
    export DEBIAN_FRONTEND=noninteractive
    # Wait for another apt-get rather than fail; no recommends (node exporter).
    install=(apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 prometheus)
    "${install[@]}" >/dev/null 2>&1 || { apt-get update -q -o DPkg::Lock::Timeout=300 && "${install[@]}"; }
  else
    echo "promtool is missing; install it with: sudo apt-get update && sudo apt-get install -y prometheus" >&2
    exit 1
  fi
fi

promtool check rules prometheus/alerts.yaml
promtool test rules prometheus/alerts_test.yaml
