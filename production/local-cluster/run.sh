#!/usr/bin/env bash
# Starts a Strata cluster of 3 ingesters, 2 distributors, 2 queriers, a compactor and a store-gateway on
# this machine, joined by memberlist, replication factor 3, sharing a filesystem bucket. Ctrl-C stops it
# (gracefully).
#
#   production/local-cluster/run.sh            # data and logs under ./local-cluster
#   DATA=/tmp/strata-cluster production/local-cluster/run.sh
#
# Push to a distributor:  http://127.0.0.1:8080/api/v1/push or :8084 (header X-Scope-OrgID)
# Query a querier:        http://127.0.0.1:8085/prometheus or :8086
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
data="${DATA:-$PWD/local-cluster}"
mkdir -p "$data"

echo "building strata"
(cd "$root" && go build -o "$data/strata" ./cmd/strata)

pids=()
start() { # name target http grpc memberlist [extra flags...]
	local name=$1 target=$2 http=$3 grpc=$4 gossip=$5
	shift 5
	"$data/strata" -config.file="$here/strata.yaml" -target="$target" \
		-server.http-listen-port="$http" -server.grpc-listen-port="$grpc" \
		-memberlist.bind-port="$gossip" -memberlist.nodename="$name" \
		-ingester.ring.instance-id="$name" -distributor.ring.instance-id="$name" \
		-data.dir="$data/$name" -blocks-storage.filesystem.dir="$data/bucket" \
		-compactor.ring.instance-id="$name" -store-gateway.sharding-ring.instance-id="$name" \
		"$@" >"$data/$name.log" 2>&1 &
	pids+=($!)
	echo "$name ($target): http://127.0.0.1:$http  grpc 127.0.0.1:$grpc  log $data/$name.log"
}

stop_all() {
	echo "stopping"
	kill -TERM "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
}
trap stop_all INT TERM EXIT

for i in 1 2 3; do
	start "ingester-$i" ingester $((8080 + i)) $((9095 + i)) $((7945 + i)) \
		-ingester.ring.tokens-file-path="$data/ingester-$i/tokens.json"
done
start distributor-1 distributor 8080 9095 7949
start distributor-2 distributor 8084 9099 7950
start querier-1 querier 8085 9100 7951
start querier-2 querier 8086 9101 7952
start compactor-1 compactor 8087 9102 7953
start store-gateway-1 store-gateway 8088 9103 7954

for port in 8081 8082 8083 8080 8084 8085 8086 8087 8088; do
	until curl -sf "http://127.0.0.1:$port/ready" >/dev/null; do sleep 0.5; done
done
echo "cluster ready: ring at http://127.0.0.1:8080/ingester/ring"
wait
