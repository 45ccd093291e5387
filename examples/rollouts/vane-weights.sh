#!/usr/bin/env bash
# vane-weights.sh: move a model's weights through vane's admin API, for
# controllers that call commands (Flagger's loadtester "cmd" webhooks, CI
# jobs, Argo Rollouts Job metrics) rather than editing the config file.
#
#   vane-weights.sh get      MODEL
#   vane-weights.sh set      MODEL V=W [V=W ...]
#   vane-weights.sh promote  MODEL VERSION
#   vane-weights.sh rollback MODEL                    # the weights before the last change
#   vane-weights.sh step     MODEL CANDIDATE BASELINE [STEPS]
#                            # next step of STEPS ("1 5 25 50 100") for the candidate
#   vane-weights.sh abort    MODEL CANDIDATE BASELINE
#                            # unless promoted (candidate at 100 %), candidate to 0
#
# Environment: VANE_ADMIN (default http://127.0.0.1:9901); VANE_TOKEN_FILE,
# when set, is sent as the bearer token. Needs bash and curl only. Exits
# non-zero when vane refuses (the body says why), so a controller that runs
# it sees the failure.
set -euo pipefail

admin=${VANE_ADMIN:-http://127.0.0.1:9901}
auth=()
if [[ -n "${VANE_TOKEN_FILE:-}" ]]; then
	auth=(-H "Authorization: Bearer $(tr -d '[:space:]' <"$VANE_TOKEN_FILE")")
fi

call() { # METHOD PATH [BODY]
	local out code
	out=$(mktemp)
	code=$(curl -sS -o "$out" -w '%{http_code}' -X "$1" "${auth[@]}" \
		-H 'Content-Type: application/json' ${3:+--data "$3"} "$admin$2")
	cat "$out"
	rm -f "$out"
	if [[ "$code" != 2* ]]; then
		echo "vane-weights.sh: $1 $2 answered $code" >&2
		return 1
	fi
}

# weight MODEL VERSION: the version's current weight.
weight() {
	call GET "/models/$1/weights" | awk -v v="$2" '
		/"version":/ { gsub(/[",]/, "", $2); cur = $2 }
		/"weight":/ && cur == v { gsub(/,/, "", $2); print $2; exit }'
}

usage() { sed -n '2,20p' "$0" >&2; exit 2; }

cmd=${1:-}
[[ $# -ge 2 ]] || usage
model=$2
case "$cmd" in
get) call GET "/models/$model/weights" ;;
set)
	shift 2
	[[ $# -ge 1 ]] || usage
	body=""
	for kv in "$@"; do
		[[ "$kv" == *=* ]] || usage
		body+="${body:+,}\"${kv%%=*}\":${kv#*=}"
	done
	call PUT "/models/$model/weights" "{$body}"
	;;
promote)
	[[ $# -eq 3 ]] || usage
	call POST "/models/$model/promote" "{\"version\":\"$3\"}"
	;;
rollback) call POST "/models/$model/rollback" ;;
step | abort)
	[[ $# -ge 4 ]] || usage
	cand=$3 base=$4 steps=${5:-1 5 25 50 100}
	wc=$(weight "$model" "$cand")
	wb=$(weight "$model" "$base")
	[[ -n "$wc" && -n "$wb" ]] || { echo "vane-weights.sh: $model has no version $cand or $base" >&2; exit 1; }
	total=$(awk -v a="$wc" -v b="$wb" 'BEGIN { print a + b }')
	pct=$(awk -v a="$wc" -v t="$total" 'BEGIN { if (t > 0) print 100 * a / t; else print 0 }')
	if [[ "$cmd" == abort ]]; then
		if awk -v p="$pct" 'BEGIN { exit !(p >= 100) }'; then
			echo "promoted already; nothing to abort"
			exit 0
		fi
		call PUT "/models/$model/weights" "{\"$cand\":0,\"$base\":$total}"
		exit
	fi
	next=""
	for s in $steps; do
		if awk -v s="$s" -v p="$pct" 'BEGIN { exit !(s > p + 1e-9) }'; then next=$s; break; fi
	done
	[[ -n "$next" ]] || { echo "at the last step already ($pct %)"; exit 0; }
	nc=$(awk -v t="$total" -v s="$next" 'BEGIN { print t * s / 100 }')
	nb=$(awk -v t="$total" -v c="$nc" 'BEGIN { print t - c }')
	call PUT "/models/$model/weights" "{\"$cand\":$nc,\"$base\":$nb}"
	;;
*) usage ;;
esac
