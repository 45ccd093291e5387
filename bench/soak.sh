#!/usr/bin/env bash
# bench/soak.sh — vane with every feature on, under steady load until TOTAL
# requests, watching memory and goroutines.
#
#   bash bench/soak.sh                          # or: make soak
#   TOTAL=2000000 bash bench/soak.sh
#
# The nginx backend (one worker) and wrk share LOAD_CORE; vane
# (bench/vane-full.yaml, GOMAXPROCS=1) runs alone on PROXY_CORE. wrk runs in
# slices of SLICE seconds, CONNECTIONS connections, until the slices add
# up to TOTAL requests or SOAK_SECONDS have passed. Every EVERY seconds it
# prints the requests so far (vane_requests_total), the rate, vane's RSS
# (VmRSS) and go_goroutines from vane's admin /metrics.
#
# Env (defaults): TOTAL (10000000), SOAK_SECONDS (600, the wall-time
# bound), CONNECTIONS (256), SLICE (10), EVERY (5), PROXY_CORE (0),
# LOAD_CORE (1), QUIET_WAIT (30: first wait up to this many seconds for
# other processes to fall under 5% of a core; each sample shows the CPU
# other processes used since the last, in % of one core).
#
# Exit status: 0 when every response was 2xx, no socket error occurred and
# RSS stayed flat: over the second half of the requests it grew by at most
# 10% over the highest RSS of the first half; 1 otherwise. (A Go heap that
# allocates little fills up to its GC goal over minutes, so RSS reaches its
# plateau well after the first 10% of the requests; the Go heap figures at
# the end show where it stands against that goal.) Not reaching TOTAL within SOAK_SECONDS is reported
# but is not a failure. Samples and wrk outputs go to
# bench/results/soak-STAMP/.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOTAL=${TOTAL:-10000000}
SOAK_SECONDS=${SOAK_SECONDS:-600}
CONNECTIONS=${CONNECTIONS:-256}
SLICE=${SLICE:-10}
EVERY=${EVERY:-5}
QUIET_WAIT=${QUIET_WAIT:-30}
for v in TOTAL SOAK_SECONDS CONNECTIONS SLICE EVERY QUIET_WAIT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done

PORT=18086
ADMIN=19901
CONFIG=bench/vane-full.yaml

bench_init
ensure_tools nginx wrk
wait_quiet "$QUIET_WAIT"
check_ports "${BACKEND_PORTS[@]}" "$PORT" "$ADMIN"
build_vane

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=bench/results/soak-$STAMP
mkdir -p "$OUT"
write_lua "$WORK/post.lua"
start_backend

URL="http://127.0.0.1:$PORT$PREDICT_PATH"
start_bg "$OUT/vane.log" env GOMAXPROCS=1 taskset -c "$PROXY_CORE" bin/vane serve -config "$CONFIG"
VANE_PID=$BG_PID
wait_port "$PORT" "$VANE_PID" vane "$OUT/vane.log"
wait_ok "$URL" vane || die "vane does not answer 200; see $OUT/vane.log"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# metric NAME: the sum of every series of NAME on vane's /metrics.
metric() {
	curl -s -m 2 "http://127.0.0.1:$ADMIN/metrics" |
		awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF; found = 1 } END { if (found) printf "%.0f", s; else print "?" }'
}

SAMPLES=$OUT/samples.tsv
printf 'elapsed_s\trequests\trps\trss_kib\tgoroutines\tother_cpu_pct\n' >"$SAMPLES"
T0=$(now_ms)
base_req=$(metric vane_requests_total)
[[ $base_req == "?" ]] && base_req=0
last_req=$base_req
last_ms=$T0

others_snapshot >"$WORK/s0"
sample() {
	local t req rps rss gor oth
	t=$(now_ms)
	others_snapshot >"$WORK/s1"
	oth=$(awk -v t="$(others_ticks "$WORK/s0" "$WORK/s1")" -v hz="$CLK_TCK" -v ms="$((t - last_ms))" \
		'BEGIN { printf "%.0f", (ms > 0 ? 100 * t / hz / (ms / 1000) : 0) }')
	mv "$WORK/s1" "$WORK/s0"
	req=$(metric vane_requests_total)
	[[ $req == "?" ]] && req=$last_req
	req=$((req - base_req))
	rps=$(awk -v d="$((req - (last_req - base_req)))" -v ms="$((t - last_ms))" 'BEGIN { printf "%.0f", (ms > 0 ? d * 1000 / ms : 0) }')
	rss=$(status_kib VmRSS "$VANE_PID")
	gor=$(metric go_goroutines)
	last_req=$((req + base_req))
	last_ms=$t
	printf '%s\t%d\t%s\t%d\t%s\t%s\n' "$(awk -v ms="$((t - T0))" 'BEGIN { printf "%.1f", ms / 1000 }')" \
		"$req" "$rps" "$rss" "$gor" "$oth" >>"$SAMPLES"
	printf '[%5.0fs] requests %10d  %7d req/s  rss %6.1f MiB  goroutines %5s  errors %d  other procs %3d%%\n' \
		"$(awk -v ms="$((t - T0))" 'BEGIN { print ms / 1000 }')" "$req" "$rps" \
		"$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$gor" "$ERRORS" "$oth"
}

# evidence: what the failing responses are, once, for the report.
EVIDENCE=0
evidence() {
	((EVIDENCE)) && return 0
	EVIDENCE=1
	{
		echo "== five requests after the first errors =="
		for _ in 1 2 3 4 5; do
			curl -s -i -m 5 -H 'Content-Type: application/json' -H 'x-user-id: alice' -d "$BODY" "$URL" || echo "curl failed: $?"
			echo
		done
		echo "== vane /status =="
		curl -s -m 2 "http://127.0.0.1:$ADMIN/status" || true
		echo "== vane_requests_total, vane_upstream_errors_total, vane_retries_total =="
		curl -s -m 2 "http://127.0.0.1:$ADMIN/metrics" | grep -E '^vane_(requests_total|upstream_errors_total|retries_total)' || true
	} >"$OUT/evidence.txt" 2>&1
	note "errors: five requests, /status and metrics saved to $OUT/evidence.txt; vane's log is $OUT/vane.log"
}

echo "soak: vane ($CONFIG) on core $PROXY_CORE, wrk $CONNECTIONS connections + nginx backend on core $LOAD_CORE"
echo "soak: until $TOTAL requests or ${SOAK_SECONDS}s; results in $OUT/"
DONE=0
ERRORS=0
NON2XX=0
SOCKERR=0
P99S=()
i=0
rate=0
sample
next_sample=$(($(now_ms) + EVERY * 1000))
while ((DONE < TOTAL)); do
	left=$((SOAK_SECONDS - ($(now_ms) - T0) / 1000))
	((left >= 1)) || break
	secs=$SLICE
	((secs > left)) && secs=$left
	if ((rate > 0)); then
		need=$(((TOTAL - DONE) / rate + 1))
		((need < secs)) && secs=$need
	fi
	i=$((i + 1))
	out=$OUT/wrk-$(printf '%04d' "$i").txt
	slice_ms=$(now_ms)
	start_bg "$out" taskset -c "$LOAD_CORE" wrk -t1 -c"$CONNECTIONS" -d"${secs}s" --latency -s "$WORK/post.lua" "$URL"
	WRK_PID=$BG_PID
	while alive "$WRK_PID"; do
		sleep 0.5
		if (($(now_ms) >= next_sample)); then
			sample
			next_sample=$((next_sample + EVERY * 1000))
		fi
	done
	rc=0
	wait "$WRK_PID" || rc=$?
	forget_pid "$WRK_PID"
	((rc == 0)) || { cat "$out" >&2; die "wrk exited with status $rc"; }
	alive "$VANE_PID" || { tail -n 30 "$OUT/vane.log" >&2; die "vane died during the soak (log: $OUT/vane.log)"; }
	read -r req _ non2xx sock _ p99 < <(parse_wrk "$out")
	DONE=$((DONE + req))
	NON2XX=$((NON2XX + non2xx))
	SOCKERR=$((SOCKERR + sock))
	ERRORS=$((NON2XX + SOCKERR))
	P99S+=("$p99")
	rate=$((req * 1000 / ($(now_ms) - slice_ms + 1)))
	if ((non2xx + sock > 0)); then
		note "slice $i: $non2xx non-2xx responses, $sock socket errors (wrk output: $out)"
		evidence
	fi
done
sample
END_MS=$(now_ms)
curl -s -m 2 "http://127.0.0.1:$ADMIN/metrics" >"$OUT/metrics.txt" || true
stop_tree "$VANE_PID"

echo
echo "== soak summary =="
wall=$(awk -v ms="$((END_MS - T0))" 'BEGIN { printf "%.1f", ms / 1000 }')
echo "requests     $DONE in ${wall}s ($(awk -v n="$DONE" -v s="$wall" 'BEGIN { printf "%.0f", n / s }') req/s over the wall time, $i wrk slices of <= ${SLICE}s, $CONNECTIONS connections)"
((DONE >= TOTAL)) || echo "             TOTAL=$TOTAL not reached within SOAK_SECONDS=$SOAK_SECONDS (not a failure)"
echo "errors       non-2xx $NON2XX, socket errors $SOCKERR"
printf '%s\n' "${P99S[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "p99 per slice  median %.2f ms, worst %.2f ms\n", a[int((NR + 1) / 2)] / 1000, a[NR] / 1000 }'
flat=$(awk -F'\t' -v total="$DONE" '
	NR == 1 { next }
	{ n++; rss[n] = $4; req[n] = $2; g[n] = $5; if (n > 1) osum += $6 }
	END {
		min = max = rss[1]; gmax = g[1]
		for (i = 1; i <= n; i++) {
			if (rss[i] < min) min = rss[i]; if (rss[i] > max) max = rss[i]
			if (g[i] + 0 > gmax + 0) gmax = g[i]
			if (!b && req[i] >= total / 10) { b = rss[i]; breq = req[i] }
			if (req[i] <= total / 2 && rss[i] > h) h = rss[i]
		}
		if (!b) { b = rss[n]; breq = req[n] }
		if (!h) h = rss[1]
		ok = rss[n] <= 1.1 * h
		printf "rss          first %.1f MiB, min %.1f, max %.1f, last %.1f; at 10%% of the requests (%d) %.1f MiB; max over the first half %.1f MiB\n", rss[1] / 1024, min / 1024, max / 1024, rss[n] / 1024, breq, b / 1024, h / 1024
		printf "goroutines   first %s, max %s, last %s\n", g[1], gmax, g[n]
		printf "other procs  %.0f%% of a core on average while sampling\n", osum / (n > 1 ? n - 1 : 1)
		printf "flat         %s (last %.1f MiB %s 1.1 x %.1f MiB, the first half'"'"'s max)\n", ok ? "yes" : "NO", rss[n] / 1024, ok ? "<=" : ">", h / 1024
		print (ok ? "FLAT" : "GREW") > "/dev/stderr"
	}' "$SAMPLES" 2>"$WORK/flat")
echo "$flat"
m=$(monitor_line "$OUT/metrics.txt")
echo "monitor      ${m#monitor: }"
awk '/^go_memstats_heap_alloc_bytes / { a = $2 } /^go_memstats_next_gc_bytes / { n = $2 }
	/^go_memstats_stack_inuse_bytes / { st = $2 } /^go_gc_duration_seconds_count / { g = $2 }
	/^go_memstats_alloc_bytes_total / { t = $2 }
	END { if (n) printf "go heap      %.1f MiB live+garbage of a %.1f MiB GC goal, stacks %.1f MiB, %d GC cycles, %.1f MiB allocated in all\n", a / 1048576, n / 1048576, st / 1048576, g, t / 1048576 }' "$OUT/metrics.txt"
echo "samples      $SAMPLES"
status=0
if ((ERRORS > 0)); then
	echo "FAIL: $NON2XX non-2xx responses and $SOCKERR socket errors (see $OUT/evidence.txt and $OUT/vane.log)"
	status=1
fi
if [[ $(cat "$WORK/flat") != FLAT ]]; then
	echo "FAIL: vane's RSS grew more than 10% over the second half of the requests"
	status=1
fi
((status)) || echo "PASS"
exit "$status"
