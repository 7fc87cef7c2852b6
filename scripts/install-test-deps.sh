#!/usr/bin/env bash
# Installs what the tests need beyond Go: Debian's prometheus package (a real remote-write client) and
# versitygw (a real S3-compatible server for the object-storage tests).
set -euo pipefail
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
if ! command -v prometheus >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
prometheus --version | head -1
gobin="$(go env GOPATH)/bin"
if [ ! -x "$gobin/versitygw" ]; then
	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
"$gobin/versitygw" --version 2>/dev/null | head -1 || true
