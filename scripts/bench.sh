#!/usr/bin/env bash
# The same remote-write load sent to Strata (single binary, RF=1), Prometheus and VictoriaMetrics, one
# after another on this machine; each receiver's CPU seconds and RSS are read from /proc. Prints one table
# with Strata's ratios. Needs Debian's prometheus and victoria-metrics packages (installed if missing, as
# root). Scenarios (docs/benchmarks.md):
#   a: SERIES (200k) active series as fast as possible for DURATION (3m)
#   b: SERIES (1M) active series at a 15 s interval; memory after 2 intervals
#   c: the query set (tools/loadgen/queries.yaml) over QSERIES (10k) series backfilled for the last 2h at a
#      15 s step into Strata, Prometheus and VictoriaMetrics; Strata's answers must equal Prometheus'
#   d: scenario a's load sent to one distributor of a cluster of 3 ingesters (memberlist, RF=3); CPU and
#      RSS summed over all Strata processes (run scenario a in the same session for the ratio)
#   e: the query set over 7 days of ESERIES (3000) series, Strata (through its query-frontend) beside one
#      Prometheus: the week in TSDB blocks (Strata: uploaded to its bucket, read by its store-gateway), the
#      last 2h50m pushed by remote write (Strata: its ingester); each query asked once per cold pass
#      (COLD_PASSES, 3; Strata restarted before each, its caches empty), then once more a minute after the
#      last (a dashboard's refresh, answered from Strata's results cache)
#
#   RECEIVERS="strata strata-rw2": scenario a's load to Strata in remote write 1.0, then 2.0 (each series
#      with its metadata), for the cost of 2.0 beside 1.0
#
#   RECEIVERS="strata strata-tls": scenario a's load to Strata in plain HTTP without authentication, then
#      over HTTPS with -auth.type=basic, for the cost of TLS and authentication
#
#   all: a and d in one table (the single nodes get the load once), then b, then c with 30 s timed
#   passes, then e
#
#   scripts/bench.sh                            # scenario a
#   SCENARIO=all scripts/bench.sh               # everything, ~20 minutes on 2 cores
#   SERIES=200000 DURATION=40s scripts/bench.sh
#   SCENARIO=b scripts/bench.sh
#   PROFILE_DIR=/tmp/prof SCENARIO=d scripts/bench.sh  # also a 30 s CPU profile of every Strata process
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIO="${SCENARIO:-a}"
if [ "$SCENARIO" = all ]; then
	SCENARIO=a RECEIVERS="strata prometheus victoria-metrics strata-rf3" ./scripts/bench.sh
	SCENARIO=b ./scripts/bench.sh
	SCENARIO=c QDURATION="${QDURATION:-30s}" ./scripts/bench.sh
	SCENARIO=e ./scripts/bench.sh
	exit 0
fi
if [ "$SCENARIO" = b ]; then
	SERIES="${SERIES:-1000000}"
else
	SERIES="${SERIES:-200000}"
fi
DURATION="${DURATION:-3m}"
CONCURRENCY="${CONCURRENCY:-4}"
BATCH="${BATCH:-2000}"
if [ "$SCENARIO" = d ]; then
	RECEIVERS="${RECEIVERS:-strata-rf3 prometheus}"
else
	RECEIVERS="${RECEIVERS:-strata prometheus victoria-metrics}"
fi
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

for pkg in prometheus victoria-metrics; do
	if ! command -v "$pkg" >/dev/null 2>&1; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
	fi
done
mkdir -p "$work/bin"
go build -o "$work/bin/strata" ./cmd/strata
go build -o "$work/bin/loadgen" ./tools/loadgen

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# cpu_seconds PID: user+system CPU time of the process.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
wait_ready() { # URL [CURL-ARGS...]
	local url="$1"
	shift
	for _ in $(seq 1 300); do curl -sf "$@" "$url" >/dev/null 2>&1 && return 0; sleep 0.2; done
	echo "not ready: $1" >&2
	return 1
}

# The benchmarks measure throughput and memory, not the per-tenant limits that protect a shared cluster:
# one tenant holds all the load, far beyond the default limits.
limits_off=(-ingester.max-global-series-per-user=0 -distributor.ingestion-rate-limit=0)

# start_cluster DIR HTTP_PORT: 3 ingesters and a distributor on 127.0.0.1; prints the PIDs.
start_cluster() {
	local dir=$1 http=$2 seeds="" gossip=() i
	for i in 0 1 2 3; do gossip[i]="$(free_port)"; done
	seeds="127.0.0.1:${gossip[0]},127.0.0.1:${gossip[1]},127.0.0.1:${gossip[2]}"
	common=("${limits_off[@]}" -distributor.replication-factor=3 -ingester.ring.store=memberlist -memberlist.bind-addr=127.0.0.1
		-memberlist.join="$seeds" -auth.multitenancy-enabled=false -server.http-listen-address=127.0.0.1
		-server.grpc-listen-address=127.0.0.1 -ingester.ring.instance-addr=127.0.0.1
		-distributor.ring.instance-addr=127.0.0.1)
	for i in 0 1 2; do
		port="$(free_port)"
		echo "ingester-$i $port" >>"$dir.http"
		"$work/bin/strata" "${common[@]}" -target=ingester -ingester.ring.instance-id="ingester-$i" \
			-memberlist.bind-port="${gossip[i]}" -server.http-listen-port="$port" \
			-server.grpc-listen-port="$(free_port)" -data.dir="$dir/ingester-$i" >"$dir.ingester-$i.log" 2>&1 &
		echo $!
	done
	echo "distributor $http" >>"$dir.http"
	"$work/bin/strata" "${common[@]}" -target=distributor -distributor.ring.instance-id=distributor \
		-memberlist.bind-port="${gossip[3]}" -server.http-listen-port="$http" \
		-server.grpc-listen-port="$(free_port)" -data.dir="$dir/distributor" >"$dir.distributor.log" 2>&1 &
	echo $!
}
cpu_sum() { local t=0 p; for p in "$@"; do t="$(echo "$t + $(cpu_seconds "$p")" | bc -l)"; done; echo "$t"; }
rss_sum() { local t=0 p; for p in "$@"; do t=$((t + $(rss_kib "$p"))); done; echo "$t"; }

if [ "$SCENARIO" = e ]; then
	# A week of data as a 7-day dashboard finds it: blocks in the bucket (Strata) or data directory
	# (Prometheus) for all but the last hours, which are in the TSDB head (Strata: its ingester). Both hold
	# the very same samples: the blocks and the pushed rounds come from one generator (same seed, series,
	# start and step), the pushed ones continuing where the blocks end.
	series="${ESERIES:-3000}"
	load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
	now=$(date +%s)
	# Samples half a step off the 15 s grid, as in scenario c (Prometheus 2.42 and 3 differ on window edges).
	start_ms=$(( (now - 7 * 86400) / 15 * 15 * 1000 + 7500 ))
	# The head holds 2h50m: a TSDB head cuts a block once it spans more than 3h, and would then be
	# compacting (Prometheus) or shipping (Strata) during the measurement.
	split_ms=$(( start_ms + (now * 1000 - 10200000 - start_ms) / 15000 * 15000 ))
	rounds=$(( (now * 1000 - split_ms) / 15000 + 1 ))
	# Blocks of a day, aligned to UTC midnight: what Strata's compactor leaves (its largest range, 24h)
	# and close to what Prometheus' leaves (18h with the default 15d retention); with no two blocks in one
	# range, neither compacts anything during the measurement.
	"$work/bin/loadgen" blocks -dir "$work/blocks" -series "$series" -start-ms "$start_ms" -end-ms "$split_ms" \
		-block-range 24h -strata-tenant anonymous -json "$work/blocks.json" >"$work/blocks.txt" 2>&1
	block_samples=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["blocks"]["samples"])' "$work/blocks.json")
	mkdir -p "$work/strata/bucket/anonymous" "$work/prometheus"
	cp -r "$work/blocks/." "$work/strata/bucket/anonymous/"
	cp -r "$work/blocks/." "$work/prometheus/"
	rm -rf "$work/blocks"

	sport="$(free_port)"
	sgrpc="$(free_port)"
	# The store-gateway reads the bucket index, which the compactor's first pass (at start) writes: a
	# short sync interval lets it load the blocks soon after. STRATA_ARGS adds flags (e.g.
	# -query-frontend.parallelize-shardable-queries=true).
	read -ra strata_args <<<"${STRATA_ARGS:-}"
	start_strata() {
		"$work/bin/strata" "${limits_off[@]}" -data.dir="$work/strata" -auth.multitenancy-enabled=false \
			-blocks-storage.bucket-store.sync-interval=10s "${strata_args[@]}" \
			-server.http-listen-address=127.0.0.1 -server.http-listen-port="$sport" \
			-server.grpc-listen-address=127.0.0.1 -server.grpc-listen-port="$sgrpc" >>"$work/strata.log" 2>&1 &
		strata_pid=$!
		wait_ready "http://127.0.0.1:$sport/ready"
	}
	# Strata answers from the blocks once its store-gateway serves all of them.
	wait_served() {
		local served=0
		for _ in $(seq 1 300); do
			served=$(curl -sf -H 'Accept: application/json' "http://127.0.0.1:$sport/store-gateway/tenants" | python3 -c '
import json, sys
print(sum(b["samples"] for t in json.load(sys.stdin) or [] if t["tenant"] == "anonymous" for b in t["blocks"] or []))' 2>/dev/null || echo 0)
			[ "$served" = "$block_samples" ] && return 0
			sleep 1
		done
		echo "the store-gateway serves $served of the $block_samples samples in blocks" >&2
		return 1
	}
	start_strata
	pport="$(free_port)"
	printf 'global: {scrape_interval: 1h}\n' >"$work/prometheus.yml"
	prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus" --web.enable-remote-write-receiver \
		--web.listen-address="127.0.0.1:$pport" >"$work/prometheus.log" 2>&1 &
	wait_ready "http://127.0.0.1:$pport/-/ready"
	strata="http://127.0.0.1:$sport/prometheus"
	prom="http://127.0.0.1:$pport"
	for url in "http://127.0.0.1:$sport/api/v1/push" "$prom/api/v1/write"; do
		"$work/bin/loadgen" write -url "$url" -auth-disabled -series "$series" -interval 0 -concurrency "$CONCURRENCY" \
			-backfill-from 168h -backfill-start-ms "$start_ms" -backfill-send-from-ms "$split_ms" -backfill-step 15s \
			-rounds "$rounds" >>"$work/write.txt"
	done
	wait_served

	# COLD_PASSES cold passes, each query asked once per pass at concurrency 1, at the pass's pinned time,
	# each receiver alone: Prometheus, then Strata with its results cache cold. Strata restarts before
	# every pass but the first, so that each pass finds its caches (results, chunks, postings) empty.
	# A minute after the last pass, the same queries again (the dashboard's refresh), Strata then
	# Prometheus. The answers are compared afterwards, untimed (asking Prometheus right after Strata would
	# put one's garbage collection beside the other's query): at the refresh's time, which Strata answers
	# from its cache, and on another grid (a 7.5 s later offset), whose cache entries are new.
	query=(-auth-disabled -time-offset 3750ms -concurrency 1 -runs 36)
	passes="${COLD_PASSES:-3}"
	loads=""
	for pass in $(seq 1 "$passes"); do
		if [ "$pass" -gt 1 ]; then
			kill "$strata_pid"
			wait "$strata_pid" 2>/dev/null || true
			start_strata
			wait_served
		fi
		sleep 5 # the start, the pushes and the sync are over before anything is timed
		t_cold=$(( $(date +%s) * 1000 ))
		loads="$loads${loads:+; }$(cut -d' ' -f1 /proc/loadavg)"
		"$work/bin/loadgen" query -query-url "$prom" "${query[@]}" -end-ms "$t_cold" \
			-json "$work/prometheus.cold.$pass.json" >"$work/prometheus.cold.$pass.txt" || true
		profile_pid=""
		if [ -n "${PROFILE_DIR:-}" ] && [ "$pass" = 1 ]; then
			mkdir -p "$PROFILE_DIR"
			curl -sf -o "$PROFILE_DIR/week-strata-cold.pprof" \
				"http://127.0.0.1:$sport/debug/pprof/profile?seconds=${PROFILE_SECONDS:-20}" &
			profile_pid=$!
		fi
		"$work/bin/loadgen" query -query-url "$strata" "${query[@]}" -end-ms "$t_cold" \
			-json "$work/strata.cold.$pass.json" >"$work/strata.cold.$pass.txt" || true
		if [ -n "$profile_pid" ]; then
			wait "$profile_pid" || true
		fi
	done
	t_warm=$(( t_cold + 60000 ))
	wait_ms=$(( t_warm - $(date +%s%3N) ))
	if [ "$wait_ms" -gt 0 ]; then
		sleep "$(echo "$wait_ms / 1000" | bc -l)"
	fi
	"$work/bin/loadgen" query -query-url "$strata" "${query[@]}" -end-ms "$t_warm" -json "$work/strata.warm.json" >"$work/strata.warm.txt" || true
	"$work/bin/loadgen" query -query-url "$prom" "${query[@]}" -end-ms "$t_warm" -json "$work/prometheus.warm.json" >"$work/prometheus.warm.txt" || true
	"$work/bin/loadgen" query -query-url "$strata" "${query[@]}" -end-ms "$t_warm" -compare-url "$prom" \
		-json "$work/compare.warm.json" >"$work/compare.warm.txt" || true
	"$work/bin/loadgen" query -query-url "$strata" -auth-disabled -time-offset 11250ms -concurrency 1 -runs 36 \
		-end-ms "$t_cold" -compare-url "$prom" -json "$work/compare.cold.json" >"$work/compare.cold.txt" || true
	load="before the scenario: $load_before; at each cold pass: $loads"
	python3 - "$work" "$series" "$passes" "$load" <<'PY'
import json, math, statistics, sys
work, series, passes, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
read = lambda n: json.load(open(f"{work}/{n}.json"))["query"]
cold = {sys_: [read(f"{sys_}.cold.{k}") for k in range(1, passes + 1)] for sys_ in ("strata", "prometheus")}
runs = {n: read(n) for n in ("strata.warm", "prometheus.warm", "compare.cold", "compare.warm")}
blocks = json.load(open(f"{work}/blocks.json"))["blocks"]
nan = float("nan")

def pct(xs, p):  # nearest rank, as loadgen's summaries
    xs = sorted(xs)
    return xs[max(math.ceil(p * len(xs)) - 1, 0)] if xs else nan

def lat(passes_, suffix=""):  # query -> its latencies (each query is asked once per pass)
    out = {}
    for r in passes_:
        for q in r["per_query"]:
            if q["query"].endswith(suffix) and q["latency_seconds"]["count"]:
                out.setdefault(q["query"], []).append(q["latency_seconds"]["p50"])
    return out

def ratio(a, b):
    return a / b if b else nan

flat = lambda d: [x for xs in d.values() for x in xs]
print(f"scenario e: {series} series, {blocks['samples']} samples in {len(blocks['blocks'])} blocks, the last 2h50m pushed;"
      f" {passes} cold passes; load {load}")
print(f"{'range':<7}{'Strata cold p50/p90 ms':>24}{'Prometheus p50/p90 ms':>24}{'cold p50/p90 ratio':>20}"
      f"{'Strata warm p50':>17}{'warm/cold':>11}{'Prometheus warm p50':>21}")
for suffix in ("/1h", "/24h", "/7d", ""):
    sc, pc = flat(lat(cold["strata"], suffix)), flat(lat(cold["prometheus"], suffix))
    sw, pw = flat(lat([runs["strata.warm"]], suffix)), flat(lat([runs["prometheus.warm"]], suffix))
    s50, s90, p50, p90, w50 = pct(sc, .5), pct(sc, .9), pct(pc, .5), pct(pc, .9), pct(sw, .5)
    print(f"{suffix.lstrip('/') or 'all':<7}{s50*1e3:>13.1f} / {s90*1e3:<8.1f}{p50*1e3:>13.1f} / {p90*1e3:<8.1f}"
          f"{ratio(s50, p50):>12.2f}x / {ratio(s90, p90):.2f}x{w50*1e3:>14.1f}{ratio(w50, s50):>10.3f}x{pct(pw, .5)*1e3:>18.1f}")
for k in range(passes):
    s50 = pct(flat(lat([cold["strata"][k]])), .5)
    p50 = pct(flat(lat([cold["prometheus"][k]])), .5)
    print(f"  cold pass {k + 1}: Strata p50 {s50*1e3:.1f} ms, Prometheus {p50*1e3:.1f} ms, x{ratio(s50, p50):.2f}")
print("7d queries, ms, median of the cold passes: Strata, Prometheus, ratio; Strata warm and its X-Strata-Cache (Prometheus then)")
sc, pc = lat(cold["strata"], "/7d"), lat(cold["prometheus"], "/7d")
sw, pw = lat([runs["strata.warm"]], "/7d"), lat([runs["prometheus.warm"]], "/7d")
cache = {q["query"]: "/".join(q.get("cache") or {}) for q in runs["strata.warm"]["per_query"]}
for q in sc:
    s, p = statistics.median(sc[q]), statistics.median(pc.get(q, [nan]))
    print(f"  {q:<38}{s*1e3:>9.1f}{p*1e3:>9.1f}{ratio(s, p):>7.2f}x"
          f"  warm {sw.get(q, [nan])[0]*1e3:>7.1f} {cache.get(q, ''):<8}({pw.get(q, [nan])[0]*1e3:.1f})")
named = [(f"{s}.cold.{k}", r) for s in cold for k, r in enumerate(cold[s], 1)] + list(runs.items())
for name, r in named:
    failed = sum(r["failed_requests"].values()) + sum((r.get("compare_failed_requests") or {}).values())
    line = f"{name}: {r['runs']} queries, {failed} failed"
    if r.get("cache"):
        line += f", X-Strata-Cache {r['cache']}"
    if name.startswith("compare"):
        line += f", {len(r.get('mismatches') or [])} answers differ from Prometheus'"
    print(line)
    for m in (r.get("mismatches") or [])[:10]:
        print(f"  mismatch: {m['query']}: {m['first'][:300]}")
PY
	exit 0
fi

if [ "$SCENARIO" = c ]; then
	# Identical data in every receiver (same seed, same timestamps), then the same queries against each.
	declare -A bases
	# Samples half a step off the 15 s grid that query steps and ranges are multiples of: Prometheus 2.42
	# closes windows on the left and Prometheus 3 (Strata's engine) does not, which differs only when a
	# sample sits exactly on a window's edge.
	start_ms=$(( ($(date +%s) - 7200) / 15 * 15 * 1000 + 7500 ))
	# A fixed number of rounds: the receivers are written one after another, and "up to the present"
	# would give the later ones more.
	rounds=$(( ($(date +%s) * 1000 - start_ms) / 15000 + 1 ))
	for r in $RECEIVERS; do
		port="$(free_port)"
		dir="$work/$r"
		mkdir -p "$dir"
		case "$r" in
		strata)
			"$work/bin/strata" "${limits_off[@]}" -data.dir="$dir" -auth.multitenancy-enabled=false \
				-server.http-listen-address=127.0.0.1 -server.http-listen-port="$port" \
				-server.grpc-listen-address=127.0.0.1 -server.grpc-listen-port="$(free_port)" >"$dir.log" 2>&1 &
			wait_ready "http://127.0.0.1:$port/ready"
			write="http://127.0.0.1:$port/api/v1/push"
			bases[$r]="http://127.0.0.1:$port/prometheus"
			;;
		prometheus)
			printf 'global: {scrape_interval: 1h}\n' >"$dir.yml"
			prometheus --config.file="$dir.yml" --storage.tsdb.path="$dir" --web.enable-remote-write-receiver \
				--web.listen-address="127.0.0.1:$port" >"$dir.log" 2>&1 &
			wait_ready "http://127.0.0.1:$port/-/ready"
			write="http://127.0.0.1:$port/api/v1/write"
			bases[$r]="http://127.0.0.1:$port"
			;;
		victoria-metrics)
			victoria-metrics -storageDataPath="$dir" -httpListenAddr="127.0.0.1:$port" -search.latencyOffset=0s >"$dir.log" 2>&1 &
			wait_ready "http://127.0.0.1:$port/health"
			write="http://127.0.0.1:$port/api/v1/write"
			bases[$r]="http://127.0.0.1:$port"
			;;
		esac
		"$work/bin/loadgen" write -url "$write" -auth-disabled -series "${QSERIES:-10000}" -interval 0 \
			-backfill-from 2h -backfill-start-ms "$start_ms" -backfill-step 15s -rounds "$rounds" -concurrency "$CONCURRENCY" >"$work/$r.write.txt"
	done
	if [ -n "${bases[victoria-metrics]:-}" ]; then
		sleep 2 # VictoriaMetrics makes new samples searchable after a short delay of its own
	fi
	# Evaluation times a quarter step off the grid: no range window or subquery step edge falls on a
	# sample or on the subquery's grid, where Prometheus 2.42 and 3 differ (see above).
	query=(-auth-disabled -time-offset 3750ms)
	if [ -n "${bases[strata]:-}" ] && [ -n "${bases[prometheus]:-}" ]; then
		# Correctness first, apart from the timing: every query over every range, Strata's answer
		# against Prometheus'. (Comparing during the timed run would put Prometheus' work beside Strata's.)
		"$work/bin/loadgen" query -query-url "${bases[strata]}" "${query[@]}" -compare-url "${bases[prometheus]}" \
			-concurrency 1 -runs 36 -json "$work/compare.json" >"$work/compare.txt" || true
	fi
	for r in $RECEIVERS; do
		"$work/bin/loadgen" query -query-url "${bases[$r]}" "${query[@]}" \
			-concurrency "$CONCURRENCY" -duration "${QDURATION:-60s}" -json "$work/$r.query.json" >"$work/$r.query.txt" || true
	done
	python3 - "$work" $RECEIVERS <<'PY'
import json, os, sys
work, names = sys.argv[1], sys.argv[2:]
rows = {n: json.load(open(f"{work}/{n}.query.json"))["query"] for n in names}
print(f"{'receiver':<18}{'runs':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'failed':>8}")
for n, q in rows.items():
    lat = q["latency_seconds"]
    failed = sum(q["failed_requests"].values())
    print(f"{n:<18}{q['runs']:>8}{lat['p50']*1e3:>9.1f}{lat['p90']*1e3:>9.1f}{lat['p99']*1e3:>9.1f}{failed:>8}")
if os.path.exists(f"{work}/compare.json"):
    c = json.load(open(f"{work}/compare.json"))["query"]
    mism = c.get("mismatches") or []
    print(f"strata vs prometheus answers: {c['runs']} queries compared, {len(mism)} differ")
    for m in mism[:20]:
        print(f"  mismatch x{m['count']}: {m['query']}: {m['first'][:300]}")
if "strata" in rows:
    s = rows["strata"]["latency_seconds"]
    for o in ("prometheus", "victoria-metrics"):
        if o in rows:
            l = rows[o]["latency_seconds"]
            print(f"strata / {o}: p50 x{s['p50']/l['p50']:.2f}, p99 x{s['p99']/l['p99']:.2f}")
PY
	exit 0
fi

for r in $RECEIVERS; do
	port="$(free_port)"
	dir="$work/$r"
	mkdir -p "$dir"
	pids=()
	secure=()     # loadgen's TLS and credential flags for strata-tls
	ready_args=() # curl's
	case "$r" in
	strata-rf3)
		mapfile -t pids < <(start_cluster "$dir" "$port")
		url="http://127.0.0.1:$port/api/v1/push"
		ready="http://127.0.0.1:$port/ready"
		;;
	strata | strata-rw2)
		echo "strata $port" >"$dir.http"
		"$work/bin/strata" "${limits_off[@]}" -data.dir="$dir" -auth.multitenancy-enabled=false \
			-server.http-listen-address=127.0.0.1 -server.http-listen-port="$port" \
			-server.grpc-listen-address=127.0.0.1 -server.grpc-listen-port="$(free_port)" >"$dir.log" 2>&1 &
		url="http://127.0.0.1:$port/api/v1/push"
		ready="http://127.0.0.1:$port/ready"
		;;
	strata-tls)
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=strata \
			-addext subjectAltName=IP:127.0.0.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
		printf 'credentials:\n  - {name: bench, secret_hash: "sha256:%s", tenants: [bench], roles: [write]}\n' \
			"$(printf bench-secret | sha256sum | cut -d' ' -f1)" >"$dir/credentials.yaml"
		"$work/bin/strata" "${limits_off[@]}" -data.dir="$dir" -auth.type=basic -auth.credentials-file="$dir/credentials.yaml" \
			-server.http-tls-cert-path="$dir/cert.pem" -server.http-tls-key-path="$dir/key.pem" \
			-server.http-listen-address=127.0.0.1 -server.http-listen-port="$port" \
			-server.grpc-listen-address=127.0.0.1 -server.grpc-listen-port="$(free_port)" >"$dir.log" 2>&1 &
		url="https://127.0.0.1:$port/api/v1/push"
		ready="https://127.0.0.1:$port/ready"
		ready_args=(--cacert "$dir/cert.pem")
		secure=(-tls-ca-path "$dir/cert.pem" -basic-auth bench:bench-secret)
		;;
	prometheus)
		printf 'global: {scrape_interval: 1h}\n' >"$dir.yml"
		prometheus --config.file="$dir.yml" --storage.tsdb.path="$dir" --web.enable-remote-write-receiver \
			--web.listen-address="127.0.0.1:$port" >"$dir.log" 2>&1 &
		url="http://127.0.0.1:$port/api/v1/write"
		ready="http://127.0.0.1:$port/-/ready"
		;;
	victoria-metrics)
		victoria-metrics -storageDataPath="$dir" -httpListenAddr="127.0.0.1:$port" >"$dir.log" 2>&1 &
		url="http://127.0.0.1:$port/api/v1/write"
		ready="http://127.0.0.1:$port/health"
		;;
	esac
	if [ ${#pids[@]} -eq 0 ]; then
		pids=($!)
	fi
	wait_ready "$ready" "${ready_args[@]}"
	# The distributor is ready before it sees the ingesters: wait for writes to succeed.
	for _ in $(seq 1 100); do
		"$work/bin/loadgen" write -url "$url" -auth-disabled "${secure[@]}" -series 10 -rounds 1 >/dev/null 2>&1 && break
		sleep 0.3
	done
	if [ "$SCENARIO" = b ]; then
		# Memory once every series has been written three times (first scrape + 2 intervals).
		cpu_before="$(cpu_sum "${pids[@]}")"
		"$work/bin/loadgen" write -url "$url" -auth-disabled -series "$SERIES" -interval 15s -batch "$BATCH" \
			-concurrency "$CONCURRENCY" -rounds 3 -json "$work/$r.json" >"$work/$r.loadgen.txt"
	else
		load=(-url "$url" -auth-disabled "${secure[@]}" -series "$SERIES" -interval 0 -batch "$BATCH" -concurrency "$CONCURRENCY")
		if [ "$r" = strata-rw2 ]; then
			load+=(-protocol 2.0)
		fi
		# One warm-up round creates the series; the receiver's CPU is measured over the measured run only.
		"$work/bin/loadgen" write "${load[@]}" -rounds 1 >/dev/null
		cpu_before="$(cpu_sum "${pids[@]}")"
		if [ -n "${PROFILE_DIR:-}" ] && [ -f "$dir.http" ]; then
			mkdir -p "$PROFILE_DIR"
			while read -r name hport; do
				(sleep 10 && curl -sf -o "$PROFILE_DIR/$r-$name.pprof" \
					"http://127.0.0.1:$hport/debug/pprof/profile?seconds=30") &
			done <"$dir.http"
		fi
		"$work/bin/loadgen" write "${load[@]}" -duration "$DURATION" -json "$work/$r.json" >"$work/$r.loadgen.txt"
	fi
	cpu_after="$(cpu_sum "${pids[@]}")"
	echo "$r $cpu_before $cpu_after $(rss_sum "${pids[@]}")" >>"$work/proc.txt"
	kill "${pids[@]}"
	wait "${pids[@]}" 2>/dev/null || true
done

python3 - "$work" "$SERIES" "$SCENARIO" <<'PY'
import json, sys
work, series = sys.argv[1], int(sys.argv[2])
rows = {}
for line in open(f"{work}/proc.txt"):
    name, before, after, rss_kib = line.split()
    rss = int(rss_kib) * 1024
    s = json.load(open(f"{work}/{name}.json"))
    w = s["write"]
    cpu = float(after) - float(before)
    accepted = w["accepted_samples_per_second"]
    total_samples = w["samples_accepted"]
    failed = w["samples_failed"]
    rows[name] = dict(rate=accepted, per_cpu=total_samples / cpu if cpu else 0, rss=int(rss), failed=failed,
                      gen_cpu=s["generator_cpu"]["percent"])
print(f"series={series} scenario={sys.argv[3]}")
print(f"{'receiver':<18}{'samples/s':>12}{'samples/CPU-s':>15}{'RSS MB':>9}{'B/series':>10}{'failed':>8}{'loadgen CPU%':>14}")
for name, r in rows.items():
    print(f"{name:<18}{r['rate']:>12.0f}{r['per_cpu']:>15.0f}{r['rss']/1e6:>9.0f}{r['rss']/series:>10.0f}{r['failed']:>8}{r['gen_cpu']:>14.1f}")
if "strata" in rows and "strata-rw2" in rows:
    s, o = rows["strata-rw2"], rows["strata"]
    print(f"strata-rw2 / strata: samples/s x{s['rate']/o['rate']:.2f}, samples per CPU-s x{s['per_cpu']/o['per_cpu']:.2f}")
for mine in ("strata", "strata-rf3"):
    if mine not in rows:
        continue
    s = rows[mine]
    for other in ("prometheus", "victoria-metrics"):
        if other in rows:
            o = rows[other]
            print(f"{mine} / {other}: samples/s x{s['rate']/o['rate']:.2f}, samples per CPU-s x{s['per_cpu']/o['per_cpu']:.2f}, RSS per series x{s['rss']/o['rss']:.2f}")
PY
