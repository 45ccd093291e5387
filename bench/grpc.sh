#!/usr/bin/env bash
# bench/grpc.sh — vane against its peers on unary gRPC calls, interleaved,
# one pinned core each.
#
#   bash bench/grpc.sh                       # or: make bench-grpc
#   ROUNDS=3 DURATION=5 bash bench/grpc.sh
#   PROXIES="nginx vane" LOADGEN=grpcload bash bench/grpc.sh
#
# The backend is the toy model's grpc-go ModelInfer server
# (examples/toymodel -grpc-listen, GOMAXPROCS=1) on LOAD_CORE,
# 127.0.0.1:18511. Each proxy in turn runs alone on PROXY_CORE (GOMAXPROCS=1
# for Go ones) in front of it: nginx (grpc_pass, upstream keepalive),
# HAProxy (h2 on both sides), h2forward (bench/cmd/h2forward: a bare
# x/net/http2 Server + Transport forwarder, the floor of anything built on
# x/net/http2), h2relayfwd (bench/cmd/h2relayfwd: the frame-level relay
# engine proxy/h2relay in front of the backend; opt in with PROXIES), vane (bench/vane-grpc.yaml: every call sampled for the
# drift monitor) and vane-nosample (the same with sample_rate 0, so the
# difference is the monitor's cost). The load generator runs on
# LOAD_CORE: h2load (Debian nghttp2-client) posting one framed
# ModelInferRequest with CONNS connections x STREAMS concurrent streams,
# or, with LOADGEN=grpcload, bench/cmd/grpcload (grpc-go; costs more on the
# load core but reads every call's grpc-status). h2load sees only HTTP
# statuses, so after each measured run grpcload makes CHECK_CALLS calls
# through the proxy and every non-OK gRPC status counts as an error. Every
# round runs every proxy once, in an order rotated by one each round; each
# proxy is started fresh, warmed up for WARMUP seconds, measured for
# DURATION seconds, stopped.
#
# Env (defaults): ROUNDS (3), DURATION (10), WARMUP (2), CONNS (4),
# STREAMS (16), CHECK_CALLS (200), PROXIES (nginx haproxy h2forward
# h2relayfwd vane vane-nosample),
# LOADGEN (h2load), PROXY_CORE (0), LOAD_CORE (1), QUIET_WAIT (30).
#
# Output: medians over rounds per proxy (calls/s, CPU µs per call, ...)
# and the ratios to nginx; raw rows in bench/results/grpc-STAMP.tsv, load
# generator outputs and proxy logs under bench/results/grpc-STAMP/.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-4}
STREAMS=${STREAMS:-16}
CHECK_CALLS=${CHECK_CALLS:-200}
PROXIES=${PROXIES:-nginx haproxy h2forward h2relayfwd vane vane-nosample}
LOADGEN=${LOADGEN:-h2load}
QUIET_WAIT=${QUIET_WAIT:-30}

for v in ROUNDS DURATION WARMUP CONNS STREAMS CHECK_CALLS QUIET_WAIT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
((DURATION <= 600)) || die "DURATION is at most 600 s per run"
[[ $LOADGEN == h2load || $LOADGEN == grpcload ]] || die "LOADGEN must be h2load or grpcload, got '$LOADGEN'"

GRPC_BACKEND=18511
TOY_HTTP=18521
METHOD_PATH=/inference.GRPCInferenceService/ModelInfer
declare -A PORT=([nginx]=18091 [haproxy]=18092 [h2forward]=18094 [h2relayfwd]=18095 [vane]=18096 [vane-nosample]=18097)

bench_init
[[ $(nproc) -ge 2 ]] || note "only $(nproc) core(s): proxy and load will share a core; numbers mean little"

# install_tools: nginx and haproxy (peers), h2load (nghttp2-client) when
# LOADGEN=h2load; a missing peer is skipped, a missing h2load is fatal.
install_tools() {
	local want=() p
	have nginx || want+=(nginx)
	have haproxy || want+=(haproxy)
	[[ $LOADGEN != h2load ]] || have h2load || want+=(nghttp2-client)
	((${#want[@]})) || return 0
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		note "installing ${want[*]} with apt-get"
		apt-get update -qq >/dev/null 2>&1 || note "apt-get update failed; trying the cached lists"
		for p in "${want[@]}"; do
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null 2>&1 || note "apt-get install $p failed"
		done
	else
		note "missing ${want[*]} and not root with apt-get: install them yourself"
	fi
	[[ $LOADGEN != h2load ]] || have h2load || die "h2load is required for LOADGEN=h2load: apt-get install nghttp2-client (or LOADGEN=grpcload)"
}
install_tools

LIST=()
for p in $PROXIES; do
	[[ -n ${PORT[$p]:-} ]] || die "unknown proxy '$p' in PROXIES (know: ${!PORT[*]})"
	if [[ $p == nginx || $p == haproxy ]] && ! have "$p"; then
		note "$p is not installed; skipping it"
		continue
	fi
	LIST+=("$p")
done
((${#LIST[@]})) || die "no proxy to run"

ports=("$GRPC_BACKEND" "$TOY_HTTP")
for p in "${LIST[@]}"; do ports+=("${PORT[$p]}"); done
[[ " ${LIST[*]} " == *" vane "* ]] && ports+=(19906)
[[ " ${LIST[*]} " == *" vane-nosample "* ]] && ports+=(19907)
check_ports "${ports[@]}"

build_vane
note "building the toy model, h2forward and grpcload"
go build -o "$WORK/toymodel" ./examples/toymodel || die "go build ./examples/toymodel failed"
go build -o "$WORK/h2forward" ./bench/cmd/h2forward || die "go build ./bench/cmd/h2forward failed"
go build -o "$WORK/h2relayfwd" ./bench/cmd/h2relayfwd || die "go build ./bench/cmd/h2relayfwd failed"
go build -o "$WORK/grpcload" ./bench/cmd/grpcload || die "go build ./bench/cmd/grpcload failed"
"$WORK/grpcload" -body "$WORK/request.bin" || die "grpcload -body failed"

sed -e 's/127.0.0.1:18096/127.0.0.1:18097/' -e 's/127.0.0.1:19906/127.0.0.1:19907/' \
	-e 's/sample_rate: 1.0/sample_rate: 0/' bench/vane-grpc.yaml >"$WORK/vane-nosample.yaml"
grep -q 'sample_rate: 0$' "$WORK/vane-nosample.yaml" || die "bench/vane-grpc.yaml no longer sets sample_rate: 1.0"

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p bench/results
OUT=bench/results/grpc-$STAMP
TSV=$OUT.tsv
mkdir -p "$OUT"

# --- proxy configs -----------------------------------------------------------

mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
user root;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    client_body_temp_path $WORK/nginx/body;
    upstream grpcb { server 127.0.0.1:$GRPC_BACKEND; keepalive 64; keepalive_requests 100000000; }
    server {
        listen 127.0.0.1:${PORT[nginx]} http2 backlog=4096;
        location / { grpc_pass grpc://grpcb; }
    }
}
EOF

cat >"$WORK/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8192
defaults
    mode http
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:${PORT[haproxy]} proto h2
    default_backend grpcb
backend grpcb
    server s1 127.0.0.1:$GRPC_BACKEND proto h2
EOF

# start_proxy NAME LOG: start one proxy on PROXY_CORE; sets PROXY_PID.
start_proxy() {
	local name=$1 log=$2 port=${PORT[$1]}
	case $name in
	nginx | haproxy)
		start_peer "$name" "$log"
		;;
	h2forward)
		start_bg "$log" env GOMAXPROCS=1 taskset -c "$PROXY_CORE" "$WORK/h2forward" \
			-listen "127.0.0.1:$port" -backend "127.0.0.1:$GRPC_BACKEND"
		;;
	h2relayfwd)
		start_bg "$log" env GOMAXPROCS=1 taskset -c "$PROXY_CORE" "$WORK/h2relayfwd" \
			-listen "127.0.0.1:$port" -upstream "127.0.0.1:$GRPC_BACKEND"
		;;
	vane)
		start_bg "$log" env GOMAXPROCS=1 taskset -c "$PROXY_CORE" bin/vane serve -config bench/vane-grpc.yaml
		;;
	vane-nosample)
		start_bg "$log" env GOMAXPROCS=1 taskset -c "$PROXY_CORE" bin/vane serve -config "$WORK/vane-nosample.yaml"
		;;
	esac
	PROXY_PID=$BG_PID
	wait_port "$port" "$PROXY_PID" "$name" "$log"
}

# grpc_ok PORT NAME: wait up to 10 s for a ModelInfer call through PORT
# to succeed (vane routes once its first health probes pass).
grpc_ok() {
	local i got
	for ((i = 0; i < 50; i++)); do
		got=$("$WORK/grpcload" -addr "127.0.0.1:$1" -calls 1 -conns 1 -streams 1 2>&1) && return 0
		sleep 0.2
	done
	note "$2: a ModelInfer call still fails after 10 s: $got"
	return 1
}

# run_load SECONDS PORT OUT: the load generator on LOAD_CORE.
run_load() {
	local secs=$1 port=$2 out=$3
	if [[ $LOADGEN == h2load ]]; then
		taskset -c "$LOAD_CORE" h2load -D "$secs" -c "$CONNS" -m "$STREAMS" -t 1 -d "$WORK/request.bin" \
			-H 'content-type: application/grpc' -H 'te: trailers' \
			"http://127.0.0.1:$port$METHOD_PATH" >"$out" 2>&1 || { cat "$out" >&2; die "h2load failed against :$port"; }
	else
		taskset -c "$LOAD_CORE" "$WORK/grpcload" -addr "127.0.0.1:$port" -conns "$CONNS" -streams "$STREAMS" \
			-duration "${secs}s" >"$out" 2>&1 || note "grpcload reported errors against :$port (see $out)"
	fi
}

# parse_load FILE: prints "calls calls_per_s errors mean_us".
parse_load() {
	if [[ $LOADGEN == h2load ]]; then
		awk '
		function us(v,   n, u) {
			n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
			if (u == "ms") return n * 1000
			if (u == "s") return n * 1000000
			return n
		}
		/^finished in/ { gsub(/,/, ""); rps = $4 }
		/^requests:/ { ok = $8; failed = $10; errored = $12; timeout = $14 }
		/^status codes:/ { non2xx = $5 + $7 + $9 }
		/^time for request:/ { mean = us($6) }
		END { printf "%d %.0f %d %.0f\n", ok, rps, failed + errored + timeout + non2xx, mean }' "$1"
	else
		awk '/^calls / { printf "%d %.0f %d 0\n", $2, $6, $4 }' "$1"
	fi
}

# --- the runs ----------------------------------------------------------------

note "backend: the toy model's gRPC server on core $LOAD_CORE, 127.0.0.1:$GRPC_BACKEND"
start_bg "$OUT/backend.log" env GOMAXPROCS=1 taskset -c "$LOAD_CORE" "$WORK/toymodel" \
	-listen "127.0.0.1:$TOY_HTTP" -grpc-listen "127.0.0.1:$GRPC_BACKEND"
BACKEND_PID=$BG_PID
wait_port "$GRPC_BACKEND" "$BACKEND_PID" "toy model" "$OUT/backend.log"
grpc_ok "$GRPC_BACKEND" "backend" || die "the toy model does not answer ModelInfer"

printf 'round\tslot\tproxy\tloadgen\tduration_s\tconns\tstreams\tcalls\tcalls_per_s\terrors\tcheck_errors\tmean_latency_us\tcpu_us_per_call\tpeak_rss_kib\tproxy_core_busy_pct\tload_core_busy_pct\tbackend_cpu_us_per_call\tother_cpu_pct\n' >"$TSV"

n=${#LIST[@]}
total_runs=$((ROUNDS * n))
note "${#LIST[@]} proxies x $ROUNDS rounds, ${DURATION}s each after ${WARMUP}s warm-up, $CONNS connections x $STREAMS streams, $LOADGEN: about $((((WARMUP + DURATION + 5) * total_runs) / 60 + 1)) min"
note "raw results: $TSV, logs: $OUT/"

run=0
for ((r = 1; r <= ROUNDS; r++)); do
	for ((s = 0; s < n; s++)); do
		name=${LIST[$(((s + r - 1) % n))]}
		port=${PORT[$name]}
		run=$((run + 1))
		log=$OUT/$name-r$r.log
		wait_quiet "$QUIET_WAIT"
		start_proxy "$name" "$log"
		grpc_ok "$port" "$name" || note "$name: measuring anyway"
		run_load "$WARMUP" "$port" "$OUT/$name-r$r-warmup.txt"

		measure_start
		run_load "$DURATION" "$port" "$OUT/$name-r$r.txt"
		measure_stop "$DURATION"
		check=$("$WORK/grpcload" -addr "127.0.0.1:$port" -calls "$CHECK_CALLS" -conns 1 -streams 4 2>&1) || true
		echo "$check" >"$OUT/$name-r$r-check.txt"
		cerr=$(awk '/^calls / { print $4; found = 1 } END { if (!found) print -1 }' <<<"$check")
		((cerr >= 0)) || cerr=$CHECK_CALLS
		note_dead "$name"
		monitor=""
		if [[ $name == vane* ]]; then
			admin=19906
			[[ $name == vane-nosample ]] && admin=19907
			curl -s -m 2 "http://127.0.0.1:$admin/metrics" >"$OUT/$name-r$r.metrics" || true
			monitor=$(monitor_line "$OUT/$name-r$r.metrics")
		fi
		stop_tree "$PROXY_PID"

		read -r calls rps errs mean < <(parse_load "$OUT/$name-r$r.txt")
		((calls > 0)) || { cat "$OUT/$name-r$r.txt" >&2; die "$name: no call succeeded"; }
		measure_per "$calls"
		printf '%d\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%s\t%d\n' \
			"$r" "$((s + 1))" "$name" "$LOADGEN" "$DURATION" "$CONNS" "$STREAMS" "$calls" "$rps" "$errs" "$cerr" "$mean" \
			"$CPU_US" "$PEAK_RSS_KIB" "$PROXY_BUSY" "$LOAD_BUSY" "$BACKEND_US" "$OTHER_PCT" >>"$TSV"
		printf '[%2d/%d] round %d %-10s %7d calls/s  mean %6.2f ms  %6.1f us/call  rss %5.1f MiB  errors %d  check errors %d  cores %d%%/%d%%  others %d%%\n' \
			"$run" "$total_runs" "$r" "$name" "$rps" "$(awk -v v="$mean" 'BEGIN{print v/1000}')" "$CPU_US" \
			"$(awk -v v="$PEAK_RSS_KIB" 'BEGIN{print v/1024}')" "$errs" "$cerr" "$PROXY_BUSY" "$LOAD_BUSY" "$OTHER_PCT"
		[[ -z $monitor ]] || echo "        $monitor"
	done
done

# --- summary -----------------------------------------------------------------

echo
awk -F'\t' \
	-v metrics="calls_per_s cpu_us_per_call mean_latency_us peak_rss_kib proxy_core_busy_pct load_core_busy_pct backend_cpu_us_per_call other_cpu_pct" \
	"$ROUNDS_AWK"'
{
	lg = $col["loadgen"]; conns = $col["conns"]; streams = $col["streams"]; dur = $col["duration_s"]
	errs[p] += $col["errors"]; cerrs[p] += $col["check_errors"]
}
END {
	printf "Medians over rounds (%s, %s s runs, %s connections x %s streams); errors are totals over all rounds\n\n", lg, dur, conns, streams
	printf "| proxy         | rounds | calls/s | CPU µs/call | mean ms | peak RSS MiB | errors | check errors | proxy core busy | load core busy | backend µs/call | other procs |\n"
	printf "|---------------|-------:|--------:|------------:|--------:|-------------:|-------:|-------------:|----------------:|---------------:|----------------:|------------:|\n"
	for (i = 1; i <= np; i++) {
		p = order[i]
		rps[p] = median(p SUBSEP "calls_per_s"); cpu[p] = median(p SUBSEP "cpu_us_per_call")
		printf "| %-13s | %6d | %7.0f | %11.1f | %7.2f | %12.1f | %6d | %12d | %14.0f%% | %13.0f%% | %15.1f | %10.0f%% |\n",
			p, rounds[p], rps[p], cpu[p], median(p SUBSEP "mean_latency_us") / 1000, median(p SUBSEP "peak_rss_kib") / 1024,
			errs[p], cerrs[p], median(p SUBSEP "proxy_core_busy_pct"), median(p SUBSEP "load_core_busy_pct"),
			median(p SUBSEP "backend_cpu_us_per_call"), median(p SUBSEP "other_cpu_pct")
	}
	if ("nginx" in seen && rps["nginx"] > 0 && cpu["nginx"] > 0) {
		printf "\nRatios to nginx (calls/s > 1 and CPU < 1 beat nginx)\n\n"
		printf "| proxy         | calls/s ratio | CPU/call ratio |\n|---------------|--------------:|---------------:|\n"
		for (i = 1; i <= np; i++) {
			p = order[i]
			printf "| %-13s | %13.2f | %14.2f |\n", p, rps[p] / rps["nginx"], cpu[p] / cpu["nginx"]
		}
	}
}' "$TSV"
