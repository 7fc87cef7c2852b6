#!/usr/bin/env bash
# Regenerates the checked-in protobuf code: scripts/genproto.sh [OUT_DIR]. The generated files go beside
# their .proto files under pkg/, or under OUT_DIR with the same relative paths (scripts/check-proto.sh
# compares the two). Generator versions are pinned here; protoc comes from Debian's protobuf-compiler
# package, and its version is pinned too because it is written into every generated file's header.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
PROTOC_VERSION=3.21.12

out="$(realpath "${1:-pkg}")"

if ! command -v protoc >/dev/null 2>&1; then
	echo "protoc is missing: run scripts/install-test-deps.sh (apt-get install protobuf-compiler)" >&2
	exit 1
fi
if [ "$(protoc --version)" != "libprotoc ${PROTOC_VERSION}" ]; then
	echo "protoc is $(protoc --version), the generated code is from libprotoc ${PROTOC_VERSION}" \
		"(Debian bookworm's protobuf-compiler); use that one, or change PROTOC_VERSION here and regenerate" >&2
	exit 1
fi

bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
GOBIN="$bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
GOBIN="$bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"

# Paths are relative to pkg/, so one proto can import another's messages.
cd pkg
for proto in $(find . -name '*.proto' | sed 's|^\./||' | sort); do
	PATH="$bin:$PATH" protoc -I . \
		--go_out="$out" --go_opt=paths=source_relative \
		--go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
		"$proto"
done
