#!/usr/bin/env bash
# Rebuilds the query page (pkg/queryui/dist, embedded in the binary and committed) from web/query-ui:
# installs the exact package versions package-lock.json pins, then bundles with esbuild. Needs Node.js
# and npm (Debian: apt-get install nodejs npm); building Strata itself does not.
# After editing web/query-ui run this and commit pkg/queryui/dist with the sources: pkg/queryui's tests
# fail while the two disagree.
set -euo pipefail
cd "$(dirname "$0")/../web/query-ui"
npm ci --no-audit --no-fund
npm run build
