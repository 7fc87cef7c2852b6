#!/usr/bin/env bash
# Regenerates the checked-in protobuf code. Generator versions are pinned here; protoc comes from Debian's
# protobuf-compiler package (3.21).
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
GOBIN="$bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
GOBIN="$bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"

# Paths are relative to pkg/, so one proto can import another's messages.
cd pkg
for proto in $(find . -name '*.proto' | sed 's|^\./||'); do
	PATH="$bin:$PATH" protoc -I . \
		--go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative \
		"$proto"
done
