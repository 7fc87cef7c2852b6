#!/usr/bin/env bash
# Installs what the tests and checks need beyond Go: Debian's prometheus package (a real remote-write
# client), versitygw (a real S3-compatible server for the object-storage tests) and Debian's
# protobuf-compiler (protoc, for make proto and make check-proto), memcached (the shared results cache's
# backend in the query-frontend's tests) and chromium (the headless browser that drives the query page in
# integration/query_ui_test.go).
set -euo pipefail
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
if ! command -v prometheus >/dev/null 2>&1 || ! command -v protoc >/dev/null 2>&1 || ! command -v memcached >/dev/null 2>&1 ||
	! command -v chromium >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends prometheus protobuf-compiler memcached chromium >/dev/null
fi
prometheus --version | head -1
protoc --version
memcached -V
chromium --version 2>/dev/null
gobin="$(go env GOPATH)/bin"
if [ ! -x "$gobin/versitygw" ]; then
	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
"$gobin/versitygw" --version 2>/dev/null | head -1 || true
