#!/usr/bin/env bash
# bench/peers.sh — vane against its peers, interleaved, one pinned core each.
#
#   bash bench/peers.sh                      # or: make bench-peers
#   ROUNDS=5 DURATION=20 bash bench/peers.sh
#   PROXIES="nginx vane-full" bash bench/peers.sh
#   BASE=HEAD~3 PROXIES="vane-full vane-base" ROUNDS=5 bash bench/peers.sh
#
# One nginx (one worker) on LOAD_CORE serves the model on 127.0.0.1:18501
# and :18502 — two identical "versions". Each proxy in turn runs alone on
# PROXY_CORE (GOMAXPROCS=1 for Go ones) in front of both, split 80/20, and
# wrk (one thread, CONNECTIONS connections) drives it from LOAD_CORE. Every
# round runs every proxy once, in an order rotated by one each round; each
# proxy is started fresh, warmed up for WARMUP seconds, then measured for
# DURATION seconds, then stopped.
#
# Env (defaults): ROUNDS (3), DURATION (10, seconds), WARMUP (2),
# CONNECTIONS (64), PROXIES (all: nginx haproxy caddy httputil fastproxy
# vane-full vane-nomonitor), PROXY_CORE (0), LOAD_CORE (1), QUIET_WAIT (30:
# before each run, wait up to this many seconds for other processes on the
# machine to fall under 5% of a core; the CPU they used during each
# measured run is recorded as other_cpu_pct, in % of one core).
#
# Output: a table of medians over rounds, vane's ratios to each peer, the
# monitor's cost; raw rows in bench/results/peers-STAMP.tsv and every wrk
# output and proxy log under bench/results/peers-STAMP/.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
PROXIES=${PROXIES:-nginx haproxy caddy httputil fastproxy vane-full vane-nomonitor}
QUIET_WAIT=${QUIET_WAIT:-30}

for v in ROUNDS DURATION WARMUP CONNECTIONS QUIET_WAIT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
((DURATION <= 600)) || die "DURATION is at most 600 s per run"

BASE=${BASE:-}

declare -A PORT=([nginx]=18081 [haproxy]=18082 [caddy]=18083 [httputil]=18084
	[fastproxy]=18085 [vane-full]=18086 [vane-nomonitor]=18087 [vane-base]=18088)

bench_init
[[ $(nproc) -ge 2 ]] || note "only $(nproc) core(s): proxy and load will share a core; numbers mean little"
ensure_tools nginx haproxy caddy wrk

# The proxies to run, in the order given; unknown names are errors,
# missing tools are skipped with a note.
LIST=()
for p in $PROXIES; do
	[[ -n ${PORT[$p]:-} ]] || die "unknown proxy '$p' in PROXIES (know: ${!PORT[*]})"
	case $p in
	haproxy | caddy)
		if ! have "$p"; then
			note "$p is not installed; skipping it"
			continue
		fi
		;;
	vane-base)
		[[ -n $BASE ]] || die "vane-base needs BASE=<git revision>"
		;;
	esac
	LIST+=("$p")
done
((${#LIST[@]})) || die "no proxy to run"

ports=("${BACKEND_PORTS[@]}")
for p in "${LIST[@]}"; do ports+=("${PORT[$p]}"); done
[[ " ${LIST[*]} " == *" vane-full "* ]] && ports+=(19901)
[[ " ${LIST[*]} " == *" vane-nomonitor "* ]] && ports+=(19902)
[[ " ${LIST[*]} " == *" vane-base "* ]] && ports+=(19903)
check_ports "${ports[@]}"

build_vane
note "building the Go peers"
go build -o "$WORK/httputilproxy" ./bench/cmd/httputilproxy || die "go build ./bench/cmd/httputilproxy failed"
go build -o "$WORK/fastproxy" ./bench/cmd/fastproxy || die "go build ./bench/cmd/fastproxy failed"
if [[ " ${LIST[*]} " == *" vane-base "* ]]; then
	rev=$(git rev-parse --verify "$BASE^{commit}") || die "BASE=$BASE is not a git revision"
	note "building vane-base at $BASE ($rev)"
	mkdir -p "$WORK/base"
	git archive "$rev" | tar -x -C "$WORK/base" || die "git archive $rev failed"
	(cd "$WORK/base" && go build -o "$WORK/vane-base" ./cmd/vane) || die "building vane at $BASE failed"
	sed -e 's/127.0.0.1:18086/127.0.0.1:18088/' -e 's/127.0.0.1:19901/127.0.0.1:19903/' \
		bench/vane-full.yaml >"$WORK/vane-base.yaml"
fi

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p bench/results
OUT=bench/results/peers-$STAMP
TSV=$OUT.tsv
mkdir -p "$OUT"
write_lua "$WORK/post.lua"

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
    proxy_temp_path $WORK/nginx/proxy;
    upstream v1 { server 127.0.0.1:${BACKEND_PORTS[0]}; keepalive 64; keepalive_requests 100000000; }
    upstream v2 { server 127.0.0.1:${BACKEND_PORTS[1]}; keepalive 64; keepalive_requests 100000000; }
    split_clients "\${request_id}" \$version {
        80% v1;
        *   v2;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]} backlog=4096;
        location / {
            proxy_pass http://\$version;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF

cat >"$WORK/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8192
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:${PORT[haproxy]}
    default_backend models
backend models
    balance roundrobin
    server v1 127.0.0.1:${BACKEND_PORTS[0]} weight 80
    server v2 127.0.0.1:${BACKEND_PORTS[1]} weight 20
EOF

# Caddy 2.6 has no weighted selection policy (weighted_round_robin came in
# 2.8): two upstreams, round robin, so Caddy splits 50/50.
mkdir -p "$WORK/caddy"
cat >"$WORK/caddy/Caddyfile" <<EOF
{
    admin off
    auto_https off
}
http://127.0.0.1:${PORT[caddy]} {
    reverse_proxy 127.0.0.1:${BACKEND_PORTS[0]} 127.0.0.1:${BACKEND_PORTS[1]} {
        lb_policy round_robin
        transport http {
            keepalive 90s
            keepalive_idle_conns 512
            keepalive_idle_conns_per_host 256
        }
    }
}
EOF

# start_proxy NAME LOG: start one proxy on PROXY_CORE; sets PROXY_PID.
start_proxy() {
	local name=$1 log=$2 port=${PORT[$1]}
	case $name in
	nginx | haproxy)
		start_peer "$name" "$log"
		;;
	caddy)
		start_bg "$log" env GOMAXPROCS=1 HOME="$WORK/caddy" XDG_DATA_HOME="$WORK/caddy/data" \
			XDG_CONFIG_HOME="$WORK/caddy/config" taskset -c "$PROXY_CORE" \
			"$(tool caddy)" run --config "$WORK/caddy/Caddyfile" --adapter caddyfile
		;;
	httputil)
		start_bg "$log" env GOMAXPROCS=1 taskset -c "$PROXY_CORE" "$WORK/httputilproxy" \
			-listen "127.0.0.1:$port" \
			-backends "http://127.0.0.1:${BACKEND_PORTS[0]}=80,http://127.0.0.1:${BACKEND_PORTS[1]}=20"
		;;
	fastproxy)
		start_bg "$log" env GOMAXPROCS=1 taskset -c "$PROXY_CORE" "$WORK/fastproxy" \
			-listen "127.0.0.1:$port" -backends "127.0.0.1:${BACKEND_PORTS[0]}=80,127.0.0.1:${BACKEND_PORTS[1]}=20"
		;;
	vane-full | vane-nomonitor)
		start_bg "$log" env GOMAXPROCS=1 taskset -c "$PROXY_CORE" bin/vane serve -config "bench/$name.yaml"
		;;
	vane-base)
		start_bg "$log" env GOMAXPROCS=1 taskset -c "$PROXY_CORE" "$WORK/vane-base" serve -config "$WORK/vane-base.yaml"
		;;
	esac
	PROXY_PID=$BG_PID
	wait_port "$port" "$PROXY_PID" "$name" "$log"
	wait_ok "http://127.0.0.1:$port$PREDICT_PATH" "$name" || note "$name: measuring anyway"
}

# --- the runs ----------------------------------------------------------------

note "backend: nginx on core $LOAD_CORE, 127.0.0.1:${BACKEND_PORTS[0]} and :${BACKEND_PORTS[1]}"
start_backend

printf 'round\tslot\tproxy\tduration_s\tconnections\trequests\trps\tnon2xx\tsocket_errors\tp50_us\tp99_us\tcpu_us_per_req\tpeak_rss_kib\tproxy_core_busy_pct\tload_core_busy_pct\tbackend_cpu_us_per_req\tother_cpu_pct\n' >"$TSV"

n=${#LIST[@]}
total_runs=$((ROUNDS * n))
secs=$(((WARMUP + DURATION + 4) * total_runs))
note "${#LIST[@]} proxies x $ROUNDS rounds, ${DURATION}s each after ${WARMUP}s warm-up, $CONNECTIONS connections: about $((secs / 60)) min"
note "raw results: $TSV, logs: $OUT/"

run=0
for ((r = 1; r <= ROUNDS; r++)); do
	for ((s = 0; s < n; s++)); do
		name=${LIST[$(((s + r - 1) % n))]}
		run=$((run + 1))
		url="http://127.0.0.1:${PORT[$name]}$PREDICT_PATH"
		log=$OUT/$name-r$r.log
		wait_quiet "$QUIET_WAIT"
		start_proxy "$name" "$log"

		run_wrk "$WARMUP" "$CONNECTIONS" "$url" "$OUT/$name-r$r-warmup.txt"

		measure_start
		run_wrk "$DURATION" "$CONNECTIONS" "$url" "$OUT/$name-r$r.txt"
		measure_stop "$DURATION"
		note_dead "$name"
		monitor=""
		if [[ $name == vane-* ]]; then
			admin=19901
			[[ $name == vane-nomonitor ]] && admin=19902
			[[ $name == vane-base ]] && admin=19903
			curl -s -m 2 "http://127.0.0.1:$admin/metrics" >"$OUT/$name-r$r.metrics" || true
			monitor=$(monitor_line "$OUT/$name-r$r.metrics")
		fi
		stop_tree "$PROXY_PID"

		read -r req rps non2xx sock p50 p99 < <(parse_wrk "$OUT/$name-r$r.txt")
		((req > 0)) || { cat "$OUT/$name-r$r.txt" >&2; die "$name: wrk completed no request"; }
		measure_per "$req"
		printf '%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%s\t%d\n' \
			"$r" "$((s + 1))" "$name" "$DURATION" "$CONNECTIONS" "$req" "$rps" "$non2xx" "$sock" "$p50" "$p99" \
			"$CPU_US" "$PEAK_RSS_KIB" "$PROXY_BUSY" "$LOAD_BUSY" "$BACKEND_US" "$OTHER_PCT" >>"$TSV"
		printf '[%2d/%d] round %d %-15s %7d req/s  p50 %6.2f ms  p99 %6.2f ms  %6.1f us/req  rss %5.1f MiB  non-2xx %d  sock-err %d  cores %d%%/%d%%  others %d%%\n' \
			"$run" "$total_runs" "$r" "$name" "$rps" "$(awk -v v="$p50" 'BEGIN{print v/1000}')" \
			"$(awk -v v="$p99" 'BEGIN{print v/1000}')" "$CPU_US" "$(awk -v v="$PEAK_RSS_KIB" 'BEGIN{print v/1024}')" \
			"$non2xx" "$sock" "$PROXY_BUSY" "$LOAD_BUSY" "$OTHER_PCT"
		[[ -z $monitor ]] || echo "        $monitor"
		if ((non2xx + sock > 0)); then
			note "$name: $non2xx non-2xx responses, $sock socket errors; wrk output: $OUT/$name-r$r.txt, proxy log: $log"
		fi
	done
done

echo
bash bench/summarize.sh "$TSV"
