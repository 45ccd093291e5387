#!/usr/bin/env bash
# bench/instructions.sh — user-space instructions per request, counted by
# valgrind's callgrind: unlike CPU time, the count does not move with
# whatever else the machine is doing, so small changes show on a shared,
# noisy machine. Kernel time (syscalls) is not counted: compare it with
# bench/peers.sh's CPU µs/request, not instead of it.
#
#   bash bench/instructions.sh                       # working tree
#   BASE=HEAD~1 bash bench/instructions.sh           # and vane at a revision
#
# Each vane (GOMAXPROCS=1, bench/vane-full.yaml; asynchronous preemption
# off, as its signals can trip callgrind) runs under callgrind with
# instrumentation off; after 3 s of warm-up load it is switched on for
# MEASURE seconds (default 8) of wrk load (CONNECTIONS, default 16), then
# off. Under callgrind vane serves ~1,000 requests/s, so batching and GC
# see a lighter load than in bench/peers.sh.
# Prints instructions (Ir) per request; the callgrind files stay in
# bench/results/instructions-STAMP/ for callgrind_annotate.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MEASURE=${MEASURE:-8}
CONNECTIONS=${CONNECTIONS:-16}
CONFIG=${CONFIG:-bench/vane-full.yaml}
BASE=${BASE:-}
bench_init
ensure_tools nginx wrk
have valgrind || die "valgrind is not installed (apt-get install valgrind)"
[[ -f $CONFIG ]] || die "no config file $CONFIG"
listen=$(awk -F'"' '/^listen:/ { print $2 }' "$CONFIG")
admin=$(awk -F'"' '/^  listen:/ { print $2; exit }' "$CONFIG")
[[ -n $listen && -n $admin ]] || die "$CONFIG: cannot read listen and admin.listen (quoted host:port expected)"
port=${listen##*:}
check_ports "${BACKEND_PORTS[@]}" "$port" "${admin##*:}"

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=bench/results/instructions-$STAMP
mkdir -p "$OUT"
build_vane
cp bin/vane "$WORK/vane-new"
bins=(new)
if [[ -n $BASE ]]; then
	rev=$(git rev-parse --verify "$BASE^{commit}") || die "BASE=$BASE is not a git revision"
	mkdir -p "$WORK/base"
	git archive "$rev" | tar -x -C "$WORK/base"
	(cd "$WORK/base" && go build -o "$WORK/vane-base" ./cmd/vane) || die "building vane at $BASE failed"
	bins+=(base)
fi
write_lua "$WORK/post.lua"
start_backend
url="http://$listen$PREDICT_PATH"

for b in "${bins[@]}"; do
	start_bg "$OUT/$b.log" env GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --instr-atstart=no \
		--callgrind-out-file="$OUT/callgrind.$b.out" "$WORK/vane-$b" serve -config "$CONFIG"
	pid=$BG_PID
	for ((i = 0; i < 300; i++)); do port_free "$port" || break; sleep 0.2; done
	wait_ok "$url" "vane-$b" || die "vane-$b does not answer"
	taskset -c "$LOAD_CORE" wrk -t1 -c"$CONNECTIONS" -d3s -s "$WORK/post.lua" "$url" >/dev/null 2>&1
	callgrind_control -i on "$pid" >/dev/null
	taskset -c "$LOAD_CORE" wrk -t1 -c"$CONNECTIONS" -d"${MEASURE}s" -s "$WORK/post.lua" "$url" >"$OUT/$b.wrk" 2>&1
	callgrind_control -i off "$pid" >/dev/null
	callgrind_control -d "$pid" >/dev/null
	# The dump is written when the program next runs valgrind's
	# scheduler; wait for it before stopping the process.
	for ((i = 0; i < 150; i++)); do
		compgen -G "$OUT/callgrind.$b.out.*" >/dev/null && break
		sleep 0.2
	done
	stop_tree "$pid"
	read -r req _ non2xx _ < <(parse_wrk "$OUT/$b.wrk")
	ir=$(awk '/^totals:/ { t += $2 } END { printf "%.0f", t }' "$OUT"/callgrind.$b.out*)
	printf '%-5s requests %7d  non-2xx %d  instructions %14s  per request %8.0f\n' \
		"$b" "$req" "$non2xx" "$ir" "$(awk -v i="$ir" -v n="$req" 'BEGIN { print i / n }')"
done
