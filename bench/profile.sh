#!/usr/bin/env bash
# bench/profile.sh — a CPU profile of vane under the peer benchmark's load.
#
#   bash bench/profile.sh                     # or: make profile
#   CONFIG=bench/vane-nomonitor.yaml PROFILE_SECONDS=20 bash bench/profile.sh
#
# Starts the benchmark's nginx backend on LOAD_CORE, vane (GOMAXPROCS=1) on
# PROXY_CORE with CONFIG (default bench/vane-full.yaml), drives it with wrk
# exactly as bench/peers.sh does, and fetches a CPU profile of PROFILE_SECONDS
# (default 10) from the admin port's /debug/pprof/profile while wrk runs.
# Prints the top functions (flat and cumulative) and leaves the profile and
# the binary under bench/results/profile-STAMP/ for `go tool pprof`.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONFIG=${CONFIG:-bench/vane-full.yaml}
PROFILE_SECONDS=${PROFILE_SECONDS:-10}
CONNECTIONS=${CONNECTIONS:-64}
[[ $PROFILE_SECONDS =~ ^[1-9][0-9]*$ ]] && ((PROFILE_SECONDS <= 60)) || die "PROFILE_SECONDS must be 1..60"

bench_init
[[ -f $CONFIG ]] || die "no config file $CONFIG"
ensure_tools nginx wrk
listen=$(awk -F'"' '/^listen:/ { print $2 }' "$CONFIG")
admin=$(awk -F'"' '/^  listen:/ { print $2; exit }' "$CONFIG")
[[ -n $listen && -n $admin ]] || die "$CONFIG: cannot read listen and admin.listen (quoted host:port expected)"
check_ports "${BACKEND_PORTS[@]}" "${listen##*:}" "${admin##*:}"

build_vane
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=bench/results/profile-$STAMP
mkdir -p "$OUT"
cp bin/vane "$OUT/vane"
write_lua "$WORK/post.lua"
start_backend

start_bg "$OUT/vane.log" env GOMAXPROCS=1 taskset -c "$PROXY_CORE" bin/vane serve -config "$CONFIG"
VANE_PID=$BG_PID
url="http://$listen$PREDICT_PATH"
wait_port "${listen##*:}" "$VANE_PID" vane "$OUT/vane.log"
wait_ok "$url" vane || die "vane does not answer 200"

run_wrk 2 "$CONNECTIONS" "$url" "$OUT/warmup.txt"
note "profiling ${PROFILE_SECONDS}s under wrk (-c$CONNECTIONS)"
run_wrk $((PROFILE_SECONDS + 2)) "$CONNECTIONS" "$url" "$OUT/wrk.txt" &
wrk_pid=$!
sleep 1
curl -s -m $((PROFILE_SECONDS + 10)) -o "$OUT/cpu.pprof" "http://$admin/debug/pprof/profile?seconds=$PROFILE_SECONDS" ||
	die "fetching the profile failed"
wait "$wrk_pid"
curl -s -m 2 -o "$OUT/allocs.pprof" "http://$admin/debug/pprof/allocs" || true
read -r req rps non2xx sock p50 p99 < <(parse_wrk "$OUT/wrk.txt")
echo "wrk: $req requests, $rps req/s, non-2xx $non2xx, socket errors $sock, p50 ${p50}us p99 ${p99}us"
go tool pprof -top -nodecount=40 "$OUT/vane" "$OUT/cpu.pprof" 2>/dev/null
go tool pprof -top -cum -nodecount=50 "$OUT/vane" "$OUT/cpu.pprof" 2>/dev/null | tail -n +6
note "profile: $OUT/cpu.pprof (go tool pprof $OUT/vane $OUT/cpu.pprof)"
