#!/usr/bin/env bash
# bench/summarize.sh TSV — the summary bench/peers.sh prints, from its raw
# rows: per proxy the median over rounds of req/s, p50, p99, CPU per
# request, peak RSS, core use and other processes' CPU (errors are totals
# over rounds, not medians, so one bad round shows); then vane-full's
# ratios to each peer,
# the monitor's cost (vane-full against vane-nomonitor) and the goals.
set -euo pipefail
tsv=${1:?usage: bash bench/summarize.sh bench/results/peers-STAMP.tsv}
[[ -s $tsv ]] || { echo "summarize.sh: no such file or empty: $tsv" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

awk -F'\t' \
	-v metrics="rps p50_us p99_us cpu_us_per_req peak_rss_kib proxy_core_busy_pct load_core_busy_pct backend_cpu_us_per_req other_cpu_pct" \
	"$ROUNDS_AWK"'
{
	conns = $col["connections"]; dur = $col["duration_s"]
	non2xx[p] += $col["non2xx"]; sock[p] += $col["socket_errors"]
}
END {
	for (i = 1; i <= np; i++) {
		p = order[i]
		rps[p] = median(p SUBSEP "rps"); p50[p] = median(p SUBSEP "p50_us"); p99[p] = median(p SUBSEP "p99_us")
		cpu[p] = median(p SUBSEP "cpu_us_per_req"); rss[p] = median(p SUBSEP "peak_rss_kib")
		pc[p] = median(p SUBSEP "proxy_core_busy_pct"); lc[p] = median(p SUBSEP "load_core_busy_pct")
		bc[p] = median(p SUBSEP "backend_cpu_us_per_req"); oc[p] = median(p SUBSEP "other_cpu_pct")
	}
	printf "Medians over rounds (%s s runs, %s connections); errors are totals over all rounds\n\n", dur, conns
	printf "| proxy          | rounds |   req/s | p50 ms | p99 ms | CPU µs/req | peak RSS MiB | non-2xx | socket errors | proxy core busy | load core busy | other procs |\n"
	printf "|----------------|-------:|--------:|-------:|-------:|-----------:|-------------:|--------:|--------------:|----------------:|---------------:|------------:|\n"
	for (i = 1; i <= np; i++) {
		p = order[i]
		printf "| %-14s | %6d | %7.0f | %6.2f | %6.2f | %10.1f | %12.1f | %7d | %13d | %14.0f%% | %13.0f%% | %10.0f%% |\n",
			p, rounds[p], rps[p], p50[p] / 1000, p99[p] / 1000, cpu[p], rss[p] / 1024, non2xx[p], sock[p], pc[p], lc[p], oc[p]
	}
	v = "vane-full"
	if (v in seen) {
		printf "\nvane-full against each peer (ratio of medians; req/s > 1 and CPU < 1 favour vane)\n\n"
		printf "| peer           | req/s ratio | CPU/req ratio | p99 ratio |\n"
		printf "|----------------|------------:|--------------:|----------:|\n"
		for (i = 1; i <= np; i++) {
			p = order[i]
			if (p == v || rps[p] == 0 || cpu[p] == 0 || p99[p] == 0) continue
			printf "| %-14s | %11.2f | %13.2f | %9.2f |\n", p, rps[v] / rps[p], cpu[v] / cpu[p], p99[v] / p99[p]
		}
		if ("vane-nomonitor" in seen) {
			o = "vane-nomonitor"
			printf "\nMonitor cost (vane-full against vane-nomonitor): req/s %+.1f%%, CPU %+.1f µs/req (%+.1f%%), p99 %+.2f ms, peak RSS %+.1f MiB\n",
				100 * (rps[v] / rps[o] - 1), cpu[v] - cpu[o], 100 * (cpu[v] / cpu[o] - 1), (p99[v] - p99[o]) / 1000, (rss[v] - rss[o]) / 1024
		}
		printf "\nGoals (issue), vane-full:\n"
		if ("nginx" in seen) {
			printf "  req/s >= 0.9 x nginx   %s  (%.2f x)\n", (rps[v] >= 0.9 * rps["nginx"] ? "met   " : "NOT met"), rps[v] / rps["nginx"]
			printf "  CPU/req <= nginx       %s  (%.1f vs %.1f µs)\n", (cpu[v] <= cpu["nginx"] ? "met   " : "NOT met"), cpu[v], cpu["nginx"]
			printf "  p99 <= nginx           %s  (%.2f vs %.2f ms; same offered load only if both saturate the proxy core)\n", (p99[v] <= p99["nginx"] ? "met   " : "NOT met"), p99[v] / 1000, p99["nginx"] / 1000
		}
		if ("caddy" in seen)
			printf "  req/s >= 4 x Caddy     %s  (%.2f x)\n", (rps[v] >= 4 * rps["caddy"] ? "met   " : "NOT met"), rps[v] / rps["caddy"]
		printf "  RSS < 64 MiB           %s  (%.1f MiB peak at %s connections; the goal is at 256: see bench/soak.sh)\n", (rss[v] < 65536 ? "met   " : "NOT met"), rss[v] / 1024, conns
	}
}
' "$tsv"
