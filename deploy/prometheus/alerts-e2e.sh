#!/usr/bin/env bash
# alerts-e2e: a real Prometheus (rules loaded) scrapes a real vane in front
# of toy backends; one endpoint is killed and one replica fails 30 % of its
# requests. Passes when VaneEndpointDown and VaneVersionErrorRatioHigh both
# fire. Takes about 3 minutes (the rules' rate windows and `for`).
#
#   make alerts-e2e           # needs `prometheus` (Debian: apt-get install prometheus) and curl
#
# Ports: PORT_BASE (default 27500) .. PORT_BASE+99 on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
base=${PORT_BASE:-27500}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v prometheus >/dev/null || { echo "alerts-e2e: prometheus not installed (apt-get install prometheus)"; exit 1; }
make -s build

cat > "$work/vane.yaml" <<YAML
listen: "127.0.0.1:$((base + 80))"
admin: {listen: "127.0.0.1:$((base + 81))"}
metrics: {listen: "127.0.0.1:$((base + 90))"}
models:
  - name: iris
    match: {path_prefix: /v1/models/iris}
    protocol: kserve-v1
    health: {interval: 2s}
    versions:
      - name: v1
        weight: 50
        endpoints: ["http://127.0.0.1:$((base + 11))", "http://127.0.0.1:$((base + 12))"]
      - name: v2
        weight: 50
        endpoints: ["http://127.0.0.1:$((base + 13))", "http://127.0.0.1:$((base + 14))"]
YAML
cp deploy/prometheus/vane.rules.yaml "$work/"
cat > "$work/prometheus.yml" <<YAML
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: [vane.rules.yaml]
scrape_configs:
  - job_name: vane
    static_configs: [{targets: ["127.0.0.1:$((base + 90))"]}]
YAML

bin/toymodel -version v1 -listen "127.0.0.1:$((base + 11))" >"$work/t1.log" 2>&1 & pids+=($!)
bin/toymodel -version v1 -listen "127.0.0.1:$((base + 12))" -fail-rate 0.3 >"$work/t2.log" 2>&1 & pids+=($!)
bin/toymodel -version v2 -listen "127.0.0.1:$((base + 13))" >"$work/t3.log" 2>&1 & pids+=($!)
bin/toymodel -version v2 -listen "127.0.0.1:$((base + 14))" >"$work/t4.log" 2>&1 & doomed=$!; pids+=($doomed)
bin/vane serve -config "$work/vane.yaml" >"$work/vane.log" 2>&1 & pids+=($!)
prometheus --config.file="$work/prometheus.yml" --web.listen-address="127.0.0.1:$((base + 95))" \
  --storage.tsdb.path="$work/data" >"$work/prometheus.log" 2>&1 & pids+=($!)

for _ in $(seq 50); do curl -sf "127.0.0.1:$((base + 90))/readyz" >/dev/null && break; sleep 0.2; done
# Bounded load: 4 clients x 10 requests/s for at most 6 minutes.
for _ in 1 2 3 4; do
  ( for _ in $(seq 3600); do
      curl -s -o /dev/null -m 2 -d '{"instances":[[6.8,2.8,4.8,1.4]]}' "http://127.0.0.1:$((base + 80))/v1/models/iris:predict"
      sleep 0.1
    done ) & pids+=($!)
done
sleep 10
kill "$doomed"
echo "alerts-e2e: killed http://127.0.0.1:$((base + 14)) (v2); http://127.0.0.1:$((base + 12)) (v1) fails 30 % of requests"

deadline=$((SECONDS + 360))
while [ $SECONDS -lt $deadline ]; do
  firing=$(curl -s "127.0.0.1:$((base + 95))/api/v1/query" --data-urlencode 'query=ALERTS{alertstate="firing"}' |
    grep -o '"alertname":"[A-Za-z]*"' | sort -u | tr '\n' ' ' || true)
  if [[ $firing == *VaneEndpointDown* && $firing == *VaneVersionErrorRatioHigh* ]]; then
    echo "alerts-e2e: firing after $SECONDS s: $firing"
    exit 0
  fi
  sleep 5
done
echo "alerts-e2e: FAILED, firing: ${firing:-none}"
curl -s "127.0.0.1:$((base + 95))/api/v1/alerts"
exit 1
