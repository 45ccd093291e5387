# shellcheck shell=bash
# bench/lib.sh — shared by bench/peers.sh, bench/grpc.sh, bench/summarize.sh
# and bench/soak.sh; sourced, not run.
#
# Processes: every process a script starts goes through start_bg, which
# records its pid; cleanup (installed by bench_init as an EXIT trap, with
# INT and TERM turned into exits) stops each one — TERM, then KILL after a
# grace period — together with its children (nginx workers). Nothing is
# ever killed by name.
#
# Cores: the proxy under test runs alone on PROXY_CORE (default 0); the
# nginx backend and wrk share LOAD_CORE (default 1).

PROXY_CORE=${PROXY_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
BACKEND_PORTS=(18501 18502)
PREDICT_PATH=/v1/models/iris:predict
HEALTH_PATH=/v1/models/iris
BODY='{"instances":[[6.8,2.8,4.8,1.4]]}'

STARTED_PIDS=()
WORK=""

die() {
	echo "$(basename "$0"): error: $*" >&2
	exit 1
}

note() { echo "$(basename "$0"): $*" >&2; }

# bench_init: repo root as cwd, a private temp dir, the cleanup trap.
bench_init() {
	cd "$(dirname "${BASH_SOURCE[0]}")/.." || die "cannot cd to the repository root"
	[[ -f go.mod && -d cmd/vane ]] || die "run from the vane repository (no go.mod/cmd/vane in $(pwd))"
	WORK=$(mktemp -d /tmp/vane-bench.XXXXXX)
	trap cleanup EXIT
	trap 'echo; note "interrupted"; exit 130' INT
	trap 'note "terminated"; exit 143' TERM
	CLK_TCK=$(getconf CLK_TCK)
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local i
	for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
		stop_tree "${STARTED_PIDS[i]}"
	done
	STARTED_PIDS=()
	[[ -n $WORK && -d $WORK ]] && rm -rf "$WORK"
	exit "$rc"
}

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ -n $st && $st != Z ]]
}

# descendants PID: PID and all its descendants, one per line.
descendants() {
	local p
	echo "$1"
	for p in $(pgrep -P "$1" 2>/dev/null || true); do
		descendants "$p"
	done
}

# stop_tree PID: TERM the process (nginx/haproxy/Go servers shut down their
# workers themselves), KILL what is left of its tree after 6 s, reap it.
stop_tree() {
	local pid=$1 tree i p
	if alive "$pid"; then
		tree=$(descendants "$pid")
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 60; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		for p in $tree; do
			if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
		done
	fi
	wait "$pid" 2>/dev/null || true
	forget_pid "$pid"
}

# forget_pid PID: drop PID from the processes cleanup stops (it was reaped).
forget_pid() {
	local keep=() q
	for q in "${STARTED_PIDS[@]}"; do [[ $q == "$1" ]] || keep+=("$q"); done
	STARTED_PIDS=("${keep[@]}")
}

# start_bg LOG CMD...: start CMD in the background with output to LOG;
# sets BG_PID.
start_bg() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 &
	BG_PID=$!
	STARTED_PIDS+=("$BG_PID")
}

port_free() { [[ -z $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

# check_ports PORT...: die naming every port already taken.
check_ports() {
	local p busy=()
	for p in "$@"; do port_free "$p" || busy+=("$p"); done
	if ((${#busy[@]})); then
		ss -Hltnp 2>/dev/null | grep -E ":($(
			IFS='|'
			echo "${busy[*]}"
		))\b" >&2 || true
		die "port(s) ${busy[*]} on 127.0.0.1 already in use; stop whatever holds them (see above) and retry"
	fi
}

# wait_port PORT PID NAME LOG: wait up to 15 s for a listener on PORT while
# PID lives; on failure show the end of LOG.
wait_port() {
	local port=$1 pid=$2 name=$3 log=$4 i
	for ((i = 0; i < 150; i++)); do
		if ! alive "$pid"; then
			tail -n 20 "$log" >&2 || true
			die "$name exited before listening on 127.0.0.1:$port (log above: $log)"
		fi
		port_free "$port" || return 0
		sleep 0.1
	done
	tail -n 20 "$log" >&2 || true
	die "$name did not listen on 127.0.0.1:$port within 15 s (log above: $log)"
}

# ensure_tools TOOL...: install the tools (Debian packages of the same
# name: nginx, haproxy, caddy, wrk) when absent. nginx (the backend) and
# wrk are required; a missing haproxy or caddy only removes that peer.
ensure_tools() {
	local want=() t
	for t in "$@"; do
		have "$t" || want+=("$t")
	done
	if ((${#want[@]})); then
		if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
			note "installing ${want[*]} with apt-get"
			apt-get update -qq >/dev/null 2>&1 || note "apt-get update failed; trying the cached lists"
			for t in "${want[@]}"; do
				if [[ $(apt-cache policy "$t" 2>/dev/null | awk '/Candidate:/ {print $2}') =~ ^(|\(none\))$ ]]; then
					note "Debian has no package $t; skipping it"
					continue
				fi
				DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$t" >/dev/null 2>&1 ||
					note "apt-get install $t failed"
			done
		else
			note "missing ${want[*]} and not root with apt-get: install them yourself"
		fi
	fi
	have nginx || die "nginx is required (it is the model backend): apt-get install nginx"
	have wrk || die "wrk is required (it is the load generator): apt-get install wrk"
	# Debian starts the packaged services where systemd runs; they listen on
	# :80, not on the benchmark's ports, so they are left alone.
}

have() { command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 ]]; }

tool() { command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"; }

# build_vane: bin/vane from the working tree.
build_vane() {
	note "building bin/vane"
	go build -o bin/vane ./cmd/vane || die "go build ./cmd/vane failed"
}

# start_backend: one nginx, one worker, pinned to LOAD_CORE, serving the
# fixed prediction on both backend ports (two "versions"). Sets BACKEND_PID.
start_backend() {
	local dir=$WORK/backend
	mkdir -p "$dir/logs"
	cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
user root;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    client_body_temp_path $dir/body;
    default_type application/json;
    server {
        listen 127.0.0.1:${BACKEND_PORTS[0]} backlog=4096;
        location / { return 200 '{"predictions":[1]}'; }
    }
    server {
        listen 127.0.0.1:${BACKEND_PORTS[1]} backlog=4096;
        location / { return 200 '{"predictions":[1]}'; }
    }
}
EOF
	start_bg "$dir/stderr.log" taskset -c "$LOAD_CORE" "$(tool nginx)" -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf"
	BACKEND_PID=$BG_PID
	wait_port "${BACKEND_PORTS[0]}" "$BACKEND_PID" "backend nginx" "$dir/logs/error.log"
	wait_port "${BACKEND_PORTS[1]}" "$BACKEND_PID" "backend nginx" "$dir/logs/error.log"
	local p code
	for p in "${BACKEND_PORTS[@]}"; do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p$HEALTH_PATH") || true
		[[ $code == 200 ]] || die "backend 127.0.0.1:$p answered GET $HEALTH_PATH with $code, want 200"
	done
}

# write_lua FILE: the wrk script — POST the JSON body with Content-Type,
# cycling x-user-id over 100 users, user-0 .. user-99 (vane's sticky
# path). With a handful of users vane's sticky hashing may put them all on
# one version (alice..heidi all land on v1 at 80/20); 25 of these 100 land
# on v2, near the 20% the weights ask for, so both versions, their
# endpoints and their drift windows carry traffic. Requests are built once
# in init, so the script costs the same for every proxy.
write_lua() {
	cat >"$1" <<EOF
local reqs = {}
local n = 0
function init(args)
  for k = 1, 100 do
    reqs[k] = wrk.format("POST", "$PREDICT_PATH",
      {["Content-Type"] = "application/json", ["x-user-id"] = "user-" .. (k - 1)},
      '$BODY')
  end
end
function request()
  n = n % #reqs + 1
  return reqs[n]
end
EOF
}

# run_wrk SECONDS CONNS URL OUT: wrk on LOAD_CORE, one thread, --latency.
run_wrk() {
	local secs=$1 conns=$2 url=$3 out=$4
	taskset -c "$LOAD_CORE" wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$WORK/post.lua" "$url" >"$out" 2>&1 ||
		{ cat "$out" >&2; die "wrk failed against $url"; }
}

# parse_wrk FILE: prints "requests rps non2xx sockerr p50_us p99_us".
parse_wrk() {
	awk '
	function us(v,   n, u) {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") return n
		if (u == "ms") return n * 1000
		if (u == "s") return n * 1000000
		if (u == "m") return n * 60000000
		return n
	}
	/requests in/ { req = $1 }
	/^Requests\/sec:/ { rps = $2 }
	/Non-2xx or 3xx responses:/ { non2xx = $NF }
	/Socket errors:/ { gsub(/,/, ""); sock = $4 + $6 + $8 + $10 }
	/^ +50%/ { p50 = us($2) }
	/^ +99%/ { p99 = us($2) }
	END { printf "%d %.0f %d %d %.0f %.0f\n", req, rps, non2xx, sock, p50, p99 }
	' "$1"
}

# ticks PID...: utime+stime of the processes, in clock ticks (fields 14, 15
# of /proc/PID/stat; threads included). Missing processes count 0.
ticks() {
	local p sum=0 t
	for p in "$@"; do
		t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
		sum=$((sum + ${t:-0}))
	done
	echo "$sum"
}

# status_kib FIELD PID...: sum of a /proc/PID/status field (VmHWM, VmRSS) in KiB.
status_kib() {
	local f=$1 p sum=0 v
	shift
	for p in "$@"; do
		v=$(awk -v f="$f:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null) || v=0
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# cpu_stat CORE: "busy total" jiffies of one core from /proc/stat.
cpu_stat() {
	awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}

# busy_pct "B0 T0" "B1 T1": share of the interval the core was busy.
busy_pct() {
	local b0 t0 b1 t1
	read -r b0 t0 <<<"$1"
	read -r b1 t1 <<<"$2"
	awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" 'BEGIN { printf "%.0f", (t > 0 ? 100 * b / t : 0) }'
}

# post URL: one request like wrk's; prints "CODE BODY".
post_once() {
	curl -s -m 5 -w ' %{http_code}' -H 'Content-Type: application/json' -H 'x-user-id: alice' \
		-d "$BODY" "$1" 2>&1 || true
}

# others_snapshot: "busy ours" — user+nice+system jiffies of all cores
# (/proc/stat; interrupt and softirq time left out, so loopback traffic
# does not count as "others") and the CPU ticks of this script's own tree:
# its live descendants, plus what it and its reaped children used. The
# difference between two snapshots is what other processes on the machine
# used (other sessions, builds, tests) — the benchmark's noise.
others_snapshot() {
	local busy ours=0 p line
	local -a v
	busy=$(awk '$1 == "cpu" { print $2 + $3 + $4; exit }' /proc/stat)
	for p in $(descendants $$); do
		read -r line 2>/dev/null <"/proc/$p/stat" || continue
		read -r -a v <<<"${line##*) }"
		ours=$((ours + v[11] + v[12]))
		if [[ $p == "$$" ]]; then ours=$((ours + v[13] + v[14])); fi
	done
	echo "$busy $ours"
}

# others_ticks BEFORE AFTER: CPU ticks other processes used between two
# snapshot files (never negative).
others_ticks() {
	local b0 o0 b1 o1 d
	read -r b0 o0 <"$1"
	read -r b1 o1 <"$2"
	d=$(((b1 - b0) - (o1 - o0)))
	echo $((d > 0 ? d : 0))
}

# wait_quiet SECONDS: wait up to SECONDS for a second in which other
# processes use under 5% of a core; say so when the machine stays busy.
wait_quiet() {
	local limit=$1 i used
	for ((i = 0; i < limit; i++)); do
		others_snapshot >"$WORK/q0"
		sleep 1
		others_snapshot >"$WORK/q1"
		used=$(others_ticks "$WORK/q0" "$WORK/q1")
		((used * 100 < 5 * CLK_TCK)) && return 0
	done
	note "other processes keep using $((used * 100 / CLK_TCK))% of a core; measuring anyway (see other_cpu_pct)"
}

# wait_ok URL NAME: a listening proxy may not route yet — vane answers 503
# "no routable version" until its first health probes pass — so wait up
# to 10 s for a 200 to the predict request; fail (status 1) after that.
wait_ok() {
	local url=$1 name=$2 i got
	for ((i = 0; i < 50; i++)); do
		got=$(post_once "$url")
		[[ $got == *" 200" ]] && return 0
		sleep 0.2
	done
	note "$name: the predict request still answers '$got' after 10 s (want 200)"
	return 1
}

# monitor_line METRICS_FILE: what vane's drift monitor did, from a saved
# /metrics page: samples taken, dropped (by reason), windows closed.
monitor_line() {
	awk '
	function sum(n) { return s[n] + 0 }
	/^vane_monitor_samples_total/ { s["taken"] += $NF }
	/^vane_monitor_samples_dropped_total/ {
		s["dropped"] += $NF
		if (match($0, /reason="[^"]*"/)) r[substr($0, RSTART + 8, RLENGTH - 9)] += $NF
	}
	/^vane_monitor_windows_closed_total/ { s["windows"] += $NF }
	/^vane_monitor_decode_errors_total/ { s["decode"] += $NF }
	END {
		why = ""
		for (k in r) if (r[k] > 0) why = why sprintf(" %s=%d", k, r[k])
		printf "monitor: samples %d, dropped %d%s, decode errors %d, windows closed %d",
			sum("taken"), sum("dropped"), (why == "" ? "" : " (" substr(why, 2) ")"), sum("decode"), sum("windows")
	}' "$1"
}

# start_peer NAME LOG: start nginx or haproxy as the proxy under test, on
# PROXY_CORE, from the config the script wrote ($WORK/nginx/nginx.conf with
# its logs under $WORK/nginx/logs, or $WORK/haproxy.cfg); sets BG_PID.
# Another NAME is an error.
start_peer() {
	local name=$1 log=$2
	case $name in
	nginx)
		start_bg "$log" taskset -c "$PROXY_CORE" "$(tool nginx)" -p "$WORK/nginx" \
			-e "$WORK/nginx/logs/error.log" -c "$WORK/nginx/nginx.conf"
		;;
	haproxy)
		start_bg "$log" taskset -c "$PROXY_CORE" "$(tool haproxy)" -db -f "$WORK/haproxy.cfg"
		;;
	*) die "start_peer: no peer named $name" ;;
	esac
}

# measure_start: before a measured run, the process trees of PROXY_PID
# (TREE) and BACKEND_PID (BTREE), their CPU ticks, both cores' jiffies and
# the other processes' CPU.
measure_start() {
	mapfile -t TREE < <(descendants "$PROXY_PID")
	mapfile -t BTREE < <(descendants "$BACKEND_PID")
	M_T0=$(ticks "${TREE[@]}")
	M_B0=$(ticks "${BTREE[@]}")
	M_C0=$(cpu_stat "$PROXY_CORE")
	M_L0=$(cpu_stat "$LOAD_CORE")
	others_snapshot >"$WORK/o0"
}

# measure_stop SECONDS: right after the measured run of SECONDS, the same
# again; sets OTHER_PCT (other processes' CPU, % of one core) and
# PEAK_RSS_KIB (the proxy tree's VmHWM).
measure_stop() {
	M_T1=$(ticks "${TREE[@]}")
	M_B1=$(ticks "${BTREE[@]}")
	M_C1=$(cpu_stat "$PROXY_CORE")
	M_L1=$(cpu_stat "$LOAD_CORE")
	others_snapshot >"$WORK/o1"
	OTHER_PCT=$(awk -v t="$(others_ticks "$WORK/o0" "$WORK/o1")" -v hz="$CLK_TCK" -v d="$1" 'BEGIN { printf "%.0f", 100 * t / hz / d }')
	PEAK_RSS_KIB=$(status_kib VmHWM "${TREE[@]}")
}

# measure_per N: with N requests (calls) served between measure_start and
# measure_stop, sets CPU_US and BACKEND_US (CPU µs per request of the
# proxy and of the backend) and PROXY_BUSY and LOAD_BUSY (% busy of
# their cores).
measure_per() {
	CPU_US=$(awk -v t="$((M_T1 - M_T0))" -v hz="$CLK_TCK" -v n="$1" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
	BACKEND_US=$(awk -v t="$((M_B1 - M_B0))" -v hz="$CLK_TCK" -v n="$1" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
	PROXY_BUSY=$(busy_pct "$M_C0" "$M_C1")
	LOAD_BUSY=$(busy_pct "$M_L0" "$M_L1")
}

# note_dead NAME: say which processes of the proxy tree (TREE) died.
note_dead() {
	local p
	for p in "${TREE[@]}"; do
		alive "$p" || note "$1: process $p of the proxy died during the run"
	done
}

# ROUNDS_AWK: the start of an awk program (run with -F'\t') that
# summarises a results TSV, header row first, one row per proxy and
# round. With -v metrics="COLUMN ...", it collects per proxy, in order of
# first appearance (order[1..np], seen[p]), its rounds (rounds[p]) and the
# named columns' values; median(p SUBSEP COLUMN) is their median over the
# rounds. Rules appended after it see data rows only.
# shellcheck disable=SC2016
ROUNDS_AWK='
function median(key,   n, a, i, j, v, parts) {
	n = split(vals[key], parts, " ")
	for (i = 1; i <= n; i++) a[i] = parts[i] + 0
	for (i = 2; i <= n; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
	if (n == 0) return 0
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
{
	p = $col["proxy"]
	if (!(p in seen)) { seen[p] = 1; order[++np] = p }
	rounds[p]++
	split(metrics, m, " ")
	for (k in m) vals[p SUBSEP m[k]] = vals[p SUBSEP m[k]] " " $col[m[k]]
}
'
