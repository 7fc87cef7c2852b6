#!/usr/bin/env bash
# Starts a Strata cluster of 3 ingesters, 2 distributors, 2 queriers, a compactor and a store-gateway on
# this machine, joined by memberlist, replication factor 3, sharing a filesystem bucket.
#
#   production/local-cluster/run.sh                   # data and logs under ./local-cluster
#   DATA=/tmp/strata-cluster production/local-cluster/run.sh
#   BASE_PORT=28000 production/local-cluster/run.sh   # when the default ports are taken
#
# Ports: the i-th process below (from 0) serves HTTP on BASE_PORT+i, gRPC on BASE_PORT+100+i and
# memberlist on BASE_PORT+200+i. The default base, 18000, keeps clear of the ports other tools take by
# default (Strata's own 8080, 9095 and 7946, Prometheus 9090, Alertmanager 9093, node_exporter 9100...), so
# the cluster runs beside them. docs/operations.md has the table.
#
# If a process exits, or is not ready within READY_TIMEOUT seconds (default 120), run.sh names it and its
# log, stops the others and exits 1. Ctrl-C or SIGTERM stops every process gracefully (SIGKILL after
# STOP_TIMEOUT seconds, default 30) and exits.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
data="${DATA:-$PWD/local-cluster}"
base="${BASE_PORT:-18000}"
ready_timeout="${READY_TIMEOUT:-120}"
stop_timeout="${STOP_TIMEOUT:-30}"

if ! [[ $base =~ ^[0-9]+$ ]] || ((base < 1024 || base + 208 > 65535)); then
	echo "run.sh: BASE_PORT must be a number from 1024 to 65327, not '$base'" >&2
	exit 2
fi
for v in ready_timeout stop_timeout; do
	if ! [[ ${!v} =~ ^[0-9]+$ ]]; then
		echo "run.sh: ${v^^} must be a number of seconds, not '${!v}'" >&2
		exit 2
	fi
done

# name and target of each process; its index gives its ports. Ingesters are the memberlist seeds.
names=(distributor-1 distributor-2 querier-1 querier-2 ingester-1 ingester-2 ingester-3 compactor-1 store-gateway-1)
targets=(distributor distributor querier querier ingester ingester ingester compactor store-gateway)
http_port() { echo $((base + $1)); }
grpc_port() { echo $((base + 100 + $1)); }
gossip_port() { echo $((base + 200 + $1)); }
join="127.0.0.1:$(gossip_port 4),127.0.0.1:$(gossip_port 5),127.0.0.1:$(gossip_port 6)"

# A port something already listens on would make a process fail at start: say which, before building.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for i in "${!names[@]}"; do
	for port in "$(http_port "$i")" "$(grpc_port "$i")" "$(gossip_port "$i")"; do
		if port_taken "$port"; then
			echo "run.sh: port $port (for ${names[i]}) is already in use; choose other ports with BASE_PORT=<n>" >&2
			exit 1
		fi
	done
done

pids=()
stopping=0
# stop_all stops every process still running: SIGTERM, then SIGKILL for those still up after STOP_TIMEOUT.
stop_all() {
	((stopping)) && return
	stopping=1
	local alive=()
	for pid in "${pids[@]}"; do
		kill -0 "$pid" 2>/dev/null && alive+=("$pid")
	done
	((${#alive[@]})) || return 0
	echo "stopping ${#alive[@]} processes"
	kill -TERM "${alive[@]}" 2>/dev/null || true
	local deadline=$((SECONDS + stop_timeout))
	while ((SECONDS < deadline)); do
		local left=0
		for pid in "${alive[@]}"; do
			kill -0 "$pid" 2>/dev/null && left=1
		done
		((left)) || break
		sleep 0.2
	done
	kill -KILL "${alive[@]}" 2>/dev/null || true
	wait "${alive[@]}" 2>/dev/null || true
}
on_signal() {
	echo "run.sh: $1"
	stop_all
	exit "$2"
}
trap 'on_signal interrupted 130' INT
trap 'on_signal terminated 143' TERM
trap stop_all EXIT

# fail reports what went wrong with process i, with the end of its log, and exits (the EXIT trap stops
# the others).
fail() {
	local i=$1 msg=$2 log="$data/${names[$1]}.log"
	echo "run.sh: ${names[i]} $msg; its log is $log; last lines:" >&2
	tail -n 20 "$log" | sed 's/^/  | /' >&2
	exit 1
}

mkdir -p "$data"
echo "building strata (the first build compiles many dependencies: minutes)"
(cd "$root" && go build -o "$data/strata" ./cmd/strata)

for i in 4 5 6 0 1 2 3 7 8; do
	name=${names[i]}
	extra=()
	if [[ ${targets[i]} == ingester ]]; then
		extra=(-ingester.ring.tokens-file-path="$data/$name/tokens.json")
	fi
	"$data/strata" -config.file="$here/strata.yaml" -target="${targets[i]}" \
		-server.http-listen-port="$(http_port "$i")" -server.grpc-listen-port="$(grpc_port "$i")" \
		-memberlist.bind-port="$(gossip_port "$i")" -memberlist.join="$join" -memberlist.nodename="$name" \
		-ingester.ring.instance-id="$name" -distributor.ring.instance-id="$name" \
		-data.dir="$data/$name" -blocks-storage.filesystem.dir="$data/bucket" \
		-compactor.ring.instance-id="$name" -store-gateway.sharding-ring.instance-id="$name" \
		"${extra[@]}" >"$data/$name.log" 2>&1 &
	pids[i]=$!
	printf '%-16s %-14s http://127.0.0.1:%s  grpc 127.0.0.1:%s  log %s\n' \
		"$name" "${targets[i]}" "$(http_port "$i")" "$(grpc_port "$i")" "$data/$name.log"
done

# exited succeeds if process i has exited, and sets status to its exit status. (Not to be called in a
# subshell: only this shell can wait for its children.)
exited() {
	kill -0 "${pids[$1]}" 2>/dev/null && return 1
	status=0
	wait "${pids[$1]}" || status=$?
}

deadline=$((SECONDS + ready_timeout))
pending=("${!names[@]}")
while ((${#pending[@]})); do
	waiting=()
	for i in "${pending[@]}"; do
		if exited "$i"; then
			fail "$i" "exited with status $status before it was ready"
		fi
		if ! curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$(http_port "$i")/ready"; then
			waiting+=("$i")
		fi
	done
	pending=(${waiting[@]+"${waiting[@]}"})
	if ((${#pending[@]})) && ((SECONDS >= deadline)); then
		i=${pending[0]}
		others=""
		for j in "${pending[@]:1}"; do others+=" ${names[j]}"; done
		[[ -n $others ]] && echo "run.sh: not ready after ${ready_timeout}s either:$others" >&2
		why=$(curl -s --max-time 2 "http://127.0.0.1:$(http_port "$i")/ready" || echo "no answer on its HTTP port")
		fail "$i" "is not ready after ${ready_timeout}s (/ready: $why)"
	fi
	((${#pending[@]})) && sleep 0.5
done
echo "cluster ready:"
echo "  push   http://127.0.0.1:$(http_port 0)/api/v1/push or :$(http_port 1) (header X-Scope-OrgID)"
echo "  query  http://127.0.0.1:$(http_port 2)/prometheus or :$(http_port 3)"
echo "  ring   http://127.0.0.1:$(http_port 0)/ingester/ring"
echo "Ctrl-C stops the cluster."

# Keep running while any process does; say when one exits (one may be killed on purpose, to try a failure).
running=("${!names[@]}")
while ((${#running[@]})); do
	sleep 1
	still=()
	for i in "${running[@]}"; do
		if exited "$i"; then
			echo "run.sh: ${names[i]} exited with status $status; its log is $data/${names[i]}.log" >&2
		else
			still+=("$i")
		fi
	done
	running=(${still[@]+"${still[@]}"})
done
