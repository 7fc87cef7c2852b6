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

for proto in $(find pkg -name '*.proto'); do
	PATH="$bin:$PATH" protoc -I "$(dirname "$proto")" \
		--go_out="$(dirname "$proto")" --go_opt=paths=source_relative \
		--go-grpc_out="$(dirname "$proto")" --go-grpc_opt=paths=source_relative \
		"$proto"
done
