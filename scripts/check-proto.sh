#!/usr/bin/env bash
# Fails when the checked-in protobuf code is not what scripts/genproto.sh makes from the .proto files now:
# a generated file that differs, one that is missing, or one left behind by a .proto that is gone. It
# generates into a temporary directory, so it never touches the work tree.
set -euo pipefail
cd "$(dirname "$0")/.."

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
./scripts/genproto.sh "$out"

status=0
while IFS= read -r f; do
	if ! diff -u "pkg/$f" "$out/$f"; then
		status=1
	fi
done < <(cd "$out" && find . -name '*.pb.go' | sed 's|^\./||' | sort)
while IFS= read -r f; do
	if [ ! -e "$out/$f" ]; then
		echo "pkg/$f: no .proto generates it any more; delete it" >&2
		status=1
	fi
done < <(cd pkg && find . -name '*.pb.go' | sed 's|^\./||' | sort)

if [ "$status" -ne 0 ]; then
	echo "the generated protobuf code is stale: run make proto and commit the result" >&2
fi
exit "$status"
