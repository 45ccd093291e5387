package configs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// baseYAML is valid; each rule case edits it to break one rule.
const baseYAML = `listen: 127.0.0.1:8080
admin:
  listen: 127.0.0.1:9901
shutdown:
  drain_timeout: 10s
models:
  - name: iris
    match:
      path_prefix: /v1/models/iris
      headers: {x-team: ml}
    protocol: kserve-v1
    timeout: 30s
    routing:
      on_unhealthy: redistribute
    versions:
      - name: v1
        weight: 90
        endpoints: ["http://127.0.0.1:8501"]
      - name: v2
        weight: 10
        endpoints: ["http://127.0.0.1:8502", "h2c://127.0.0.1:8503"]
    health:
      interval: 5s
      timeout: 1s
    circuit_breaker:
      failure_ratio: 0.5
    retry:
      attempts: 2
    monitor:
      sample_rate: 1.0
      reference:
        warmup: 100
      features: [a, b]
  - name: wine
    match:
      path_prefix: /v1/models/wine
    versions:
      - name: v1
        endpoints: ["http://127.0.0.1:8601"]
`

// edit applies old→new replacements to baseYAML, each to the first match.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	src := baseYAML
	for i := 0; i+1 < len(pairs); i += 2 {
		require.Contains(t, src, pairs[i], "edit target")
		src = strings.Replace(src, pairs[i], pairs[i+1], 1)
	}
	return src
}

func TestBaseIsValid(t *testing.T) {
	mustParse(t, baseYAML)
}

// ruleCase edits baseYAML to break one rule and names the problem that
// must come back.
type ruleCase struct {
	name  string
	edits []string
	path  string
	line  string // marker of the expected line; "" for line 0
	nth   int    // which line with the marker, from 1
	msg   string
	count int // problems expected in all; 0 means 1
}

// runRules runs each case as a subtest.
func runRules(t *testing.T, tests []ruleCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := edit(t, tt.edits...)
			errs := problems(t, src)
			want := max(tt.count, 1)
			assert.Len(t, errs, want, "problems:\n%v", errs)
			p := at(t, errs, tt.path)
			wantLine := 0
			if tt.line != "" {
				wantLine = lineOf(t, src, tt.line, tt.nth)
			}
			assert.Equal(t, wantLine, p.Line, "line of %s", p)
			assert.Contains(t, p.Msg, tt.msg)
		})
	}
}

func TestRules(t *testing.T) {
	runRules(t, []ruleCase{
		{"listen not host:port", []string{"listen: 127.0.0.1:8080", "listen: localhost"}, "listen", "listen: localhost", 1, "must be host:port", 0},
		{"listen port not a number", []string{"listen: 127.0.0.1:8080", "listen: 127.0.0.1:http"}, "listen", "listen: 127.0.0.1:http", 1, "port must be a number", 0},
		{"listen port out of range", []string{"listen: 127.0.0.1:8080", "listen: 127.0.0.1:70000"}, "listen", "70000", 1, "port must be a number", 0},
		{"guard_reads without a token", []string{"  listen: 127.0.0.1:9901", "  listen: 127.0.0.1:9901\n  guard_reads: true"}, "admin.guard_reads", "guard_reads: true", 1, "needs admin.token_file", 0},
		{"admin equals listen", []string{"  listen: 127.0.0.1:9901", "  listen: 127.0.0.1:8080"}, "admin.listen", "  listen: 127.0.0.1:8080", 1, "must differ from listen", 0},
		{"admin wildcard on data port", []string{"  listen: 127.0.0.1:9901", "  listen: 0.0.0.0:8080"}, "admin.listen", "0.0.0.0:8080", 1, "must differ from listen", 0},
		{"admin empty host on data port", []string{"  listen: 127.0.0.1:9901", `  listen: ":8080"`}, "admin.listen", `":8080"`, 1, "must differ from listen", 0},
		{"drain timeout zero", []string{"drain_timeout: 10s", "drain_timeout: 0s"}, "shutdown.drain_timeout", "drain_timeout", 1, "must be > 0, got 0s", 0},

		{"model name upper case", []string{"- name: iris", "- name: Iris"}, "models[0].name", "- name: Iris", 1, "must match [a-z0-9][a-z0-9._-]*", 0},
		{"model name leading dash", []string{"- name: iris", "- name: -iris"}, "models[0].name", "- name: -iris", 1, "must match", 0},
		{"model name empty", []string{"- name: iris", `- name: ""`}, "models[0].name", `- name: ""`, 1, "is required", 0},
		{"model name duplicate", []string{"- name: wine", "- name: iris"}, "models[1].name", "- name: iris", 2, `duplicate model name "iris" (also models[0])`, 0},
		{"no matcher", []string{"      path_prefix: /v1/models/iris\n      headers: {x-team: ml}", "      {}"}, "models[0].match", "    match:", 1, "must set at least one of path_prefix, host, headers", 0},
		{"path prefix without slash", []string{"path_prefix: /v1/models/wine", "path_prefix: v1/models/wine"}, "models[1].match.path_prefix", "path_prefix: v1/models/wine", 1, `must start with "/"`, 0},
		{"same match as earlier model", []string{"path_prefix: /v1/models/wine", "path_prefix: /v1/models/iris\n      headers: {X-Team: ml}"}, "models[1].match", "    match:", 2, "same matchers as models[0]", 0},
		{"header name not a token", []string{"{x-team: ml}", `{"x team": ml}`}, "models[0].match.headers.x team", "x team", 1, "not a valid HTTP header name", 0},
		{"header value with control char", []string{"{x-team: ml}", `{x-team: "m\nl"}`}, "models[0].match.headers.x-team", "x-team", 1, "control characters", 0},
		{"protocol unknown", []string{"protocol: kserve-v1", "protocol: kserve"}, "models[0].protocol", "protocol: kserve", 1, "must be one of kserve-v1, kserve-v2, tfserving, mlflow, openai, grpc, raw", 0},
		{"timeout zero", []string{"timeout: 30s", "timeout: 0s"}, "models[0].timeout", "timeout: 0s", 1, "must be > 0", 0},
		{"timeout negative", []string{"timeout: 30s", "timeout: -1s"}, "models[0].timeout", "timeout: -1s", 1, "must be > 0, got -1s", 0},

		{"no versions", []string{"    versions:\n      - name: v1\n        endpoints: [\"http://127.0.0.1:8601\"]", "    versions: []"}, "models[1].versions", "versions: []", 1, "at least one version is required", 0},
		{"version name empty", []string{"- name: v2", `- name: ""`}, "models[0].versions[1].name", `- name: ""`, 1, "is required", 0},
		{"version name invalid", []string{"- name: v2", "- name: V2"}, "models[0].versions[1].name", "- name: V2", 1, "must match", 0},
		{"version name duplicate", []string{"- name: v2", "- name: v1"}, "models[0].versions[1].name", "- name: v1", 2, `duplicate version name "v1" (also versions[0])`, 0},
		{"weight negative", []string{"weight: 10", "weight: -5"}, "models[0].versions[1].weight", "weight: -5", 1, "must be >= 0, got -5", 0},
		{"weight NaN", []string{"weight: 10", "weight: .nan"}, "models[0].versions[1].weight", "weight: .nan", 1, "must be a finite number, got NaN", 0},
		{"weight infinite", []string{"weight: 10", "weight: .inf"}, "models[0].versions[1].weight", "weight: .inf", 1, "must be a finite number, got +Inf", 0},
		{"all weights zero", []string{"weight: 90", "weight: 0", "weight: 10", "weight: 0.0"}, "models[0].versions", "    versions:", 1, "at least one version must have weight > 0", 0},
		{"no endpoints", []string{`endpoints: ["http://127.0.0.1:8501"]`, "endpoints: []"}, "models[0].versions[0].endpoints", "endpoints: []", 1, "at least one endpoint is required", 0},
		{"endpoint https", []string{"http://127.0.0.1:8501", "https://127.0.0.1:8501"}, "models[0].versions[0].endpoints[0]", "https://", 1, "scheme must be http", 0},
		{"endpoint without scheme", []string{"http://127.0.0.1:8501", "127.0.0.1:8501"}, "models[0].versions[0].endpoints[0]", `["127.0.0.1:8501"]`, 1, "must be a URL", 0},
		{"endpoint without port", []string{"http://127.0.0.1:8501", "http://backend"}, "models[0].versions[0].endpoints[0]", "http://backend", 1, "must give the port explicitly", 0},
		{"endpoint port zero", []string{"http://127.0.0.1:8501", "http://backend:0"}, "models[0].versions[0].endpoints[0]", "http://backend:0", 1, "port must be a number from 1 to 65535", 0},
		{"endpoint without host", []string{"http://127.0.0.1:8501", "http://:8501"}, "models[0].versions[0].endpoints[0]", "http://:8501", 1, "must name a host", 0},
		{"endpoint with path", []string{"http://127.0.0.1:8501", "http://127.0.0.1:8501/v1"}, "models[0].versions[0].endpoints[0]", "8501/v1", 1, "must not have a path", 0},
		{"endpoint with query", []string{"http://127.0.0.1:8501", "http://127.0.0.1:8501?a=b"}, "models[0].versions[0].endpoints[0]", "?a=b", 1, "must not have a query", 0},
		{"endpoint with fragment", []string{"http://127.0.0.1:8501", "http://127.0.0.1:8501#x"}, "models[0].versions[0].endpoints[0]", "#x", 1, "must not have a fragment", 0},
		{"endpoint with user info", []string{"http://127.0.0.1:8501", "http://u:p@127.0.0.1:8501"}, "models[0].versions[0].endpoints[0]", "u:p@", 1, "must not hold user info", 0},
		{"endpoint duplicate", []string{"h2c://127.0.0.1:8503", "http://127.0.0.1:8502/"}, "models[0].versions[1].endpoints[1]", "8502/", 1, `duplicate endpoint "http://127.0.0.1:8502/" (also endpoints[0])`, 0},
		{"grpc needs h2c", []string{"protocol: kserve-v1", "protocol: grpc"}, "models[0].versions[0].endpoints[0]", "8501", 1, "needs an h2c:// endpoint", 2},

		{"on_unhealthy unknown", []string{"on_unhealthy: redistribute", "on_unhealthy: drop"}, "models[0].routing.on_unhealthy", "on_unhealthy: drop", 1, "must be one of redistribute, fallback, fail", 0},
		{"fallback missing", []string{"on_unhealthy: redistribute", "on_unhealthy: fallback"}, "models[0].routing.fallback", "    routing:", 1, "is required when on_unhealthy is fallback", 0},
		{"fallback unknown version", []string{"on_unhealthy: redistribute", "on_unhealthy: fallback\n      fallback: v3"}, "models[0].routing.fallback", "fallback: v3", 1, `must name a version of this model ("v1", "v2"); got "v3"`, 0},
		{"sticky header not a token", []string{"on_unhealthy: redistribute", "sticky_header: x user"}, "models[0].routing.sticky_header", "sticky_header", 1, "must be a valid HTTP header name", 0},

		{"health path without slash", []string{"interval: 5s", "interval: 5s\n      path: ready"}, "models[0].health.path", "path: ready", 1, `must start with "/"`, 0},
		{"health path empty", []string{"interval: 5s", `interval: 5s` + "\n      path: \"\""}, "models[0].health.path", `path: ""`, 1, "must not be empty for protocol kserve-v1", 0},
		{"health interval zero", []string{"interval: 5s", "interval: 0s"}, "models[0].health.interval", "interval: 0s", 1, "must be > 0", 0},
		{"health timeout zero", []string{"timeout: 1s", "timeout: 0s"}, "models[0].health.timeout", "timeout: 0s", 1, "must be > 0", 0},
		{"health timeout above interval", []string{"timeout: 1s", "timeout: 6s"}, "models[0].health.timeout", "timeout: 6s", 1, "must be <= health.interval (5s), got 6s", 0},
		{"healthy threshold zero", []string{"timeout: 1s", "timeout: 1s\n      healthy_threshold: 0"}, "models[0].health.healthy_threshold", "healthy_threshold: 0", 1, "must be >= 1, got 0", 0},
		{"unhealthy threshold negative", []string{"timeout: 1s", "timeout: 1s\n      unhealthy_threshold: -1"}, "models[0].health.unhealthy_threshold", "unhealthy_threshold", 1, "must be >= 1, got -1", 0},

		{"failure ratio zero", []string{"failure_ratio: 0.5", "failure_ratio: 0"}, "models[0].circuit_breaker.failure_ratio", "failure_ratio: 0", 1, "must be > 0 and <= 1, got 0", 0},
		{"failure ratio above one", []string{"failure_ratio: 0.5", "failure_ratio: 1.5"}, "models[0].circuit_breaker.failure_ratio", "failure_ratio: 1.5", 1, "got 1.5", 0},
		{"min requests zero", []string{"failure_ratio: 0.5", "min_requests: 0"}, "models[0].circuit_breaker.min_requests", "min_requests", 1, "must be >= 1, got 0", 0},
		{"breaker window zero", []string{"failure_ratio: 0.5", "window: 0s"}, "models[0].circuit_breaker.window", "window: 0s", 1, "must be > 0", 0},
		{"open_for negative", []string{"failure_ratio: 0.5", "open_for: -10s"}, "models[0].circuit_breaker.open_for", "open_for", 1, "must be > 0, got -10s", 0},
		{"half open zero", []string{"failure_ratio: 0.5", "half_open_requests: 0"}, "models[0].circuit_breaker.half_open_requests", "half_open_requests", 1, "must be >= 1", 0},

		{"attempts zero", []string{"attempts: 2", "attempts: 0"}, "models[0].retry.attempts", "attempts: 0", 1, "must be >= 1, got 0", 0},
		{"budget ratio above one", []string{"attempts: 2", "attempts: 2\n      budget_ratio: 1.5"}, "models[0].retry.budget_ratio", "budget_ratio", 1, "must be >= 0 and <= 1, got 1.5", 0},
		{"budget ratio negative", []string{"attempts: 2", "attempts: 2\n      budget_ratio: -0.1"}, "models[0].retry.budget_ratio", "budget_ratio", 1, "got -0.1", 0},

		{"sample rate above one", []string{"sample_rate: 1.0", "sample_rate: 2"}, "models[0].monitor.sample_rate", "sample_rate: 2", 1, "must be >= 0 and <= 1, got 2", 0},
		{"max body bytes negative", []string{"sample_rate: 1.0", "max_body_bytes: -1"}, "models[0].monitor.max_body_bytes", "max_body_bytes", 1, "must be >= 0, got -1", 0},
		{"monitor window zero", []string{"sample_rate: 1.0", "window: 0"}, "models[0].monitor.window", "window: 0", 1, "must be >= 2, got 0", 0},
		{"monitor window one", []string{"sample_rate: 1.0", "window: 1"}, "models[0].monitor.window", "window: 1", 1, "must be >= 2, got 1", 0},
		{"two reference sources", []string{"warmup: 100", "warmup: 100\n        file: ref.json"}, "models[0].monitor.reference", "      reference:", 1, "set only one of warmup, file, version", 0},
		{"file and version", []string{"warmup: 100", "version: v1\n        file: ref.json"}, "models[0].monitor.reference", "      reference:", 1, "set only one of warmup, file, version", 0},
		{"warmup zero", []string{"warmup: 100", "warmup: 0"}, "models[0].monitor.reference.warmup", "warmup: 0", 1, "must be >= 1, got 0", 0},
		{"reference version unknown", []string{"warmup: 100", "version: v9"}, "models[0].monitor.reference.version", "version: v9", 1, "must name a version of this model", 0},
		{"feature duplicate", []string{"features: [a, b]", "features: [a, b, a]"}, "models[0].monitor.features[2]", "features:", 1, `duplicate feature "a" (also features[0])`, 0},
		{"feature empty", []string{"features: [a, b]", `features: [a, ""]`}, "models[0].monitor.features[1]", "features:", 1, "must not be empty", 0},
	})
}

func TestLoadRules(t *testing.T) {
	const drain = "  drain_timeout: 10s"
	runRules(t, []ruleCase{
		{"queue size zero", []string{drain, drain + "\nsampling:\n  queue_size: 0"}, "sampling.queue_size", "queue_size: 0", 1, "must be >= 1, got 0", 0},
		{"workers zero", []string{drain, drain + "\nsampling:\n  workers: 0"}, "sampling.workers", "workers: 0", 1, "must be >= 1, got 0", 0},
		{"workers negative", []string{drain, drain + "\nsampling: {queue_size: 8, workers: -2}"}, "sampling.workers", "sampling:", 1, "must be >= 1, got -2", 0},
		{"endpoint concurrency negative", []string{"    retry:", "    limits:\n      endpoint_concurrency: -1\n    retry:"}, "models[0].limits.endpoint_concurrency", "endpoint_concurrency", 1, "must be >= 0, got -1", 0},

		{"failure status too low", []string{"failure_ratio: 0.5", "failure_statuses: [500, 99]"}, "models[0].circuit_breaker.failure_statuses[1]", "failure_statuses", 1, "must be an HTTP status from 100 to 599, got 99", 0},
		{"failure status too high", []string{"failure_ratio: 0.5", "failure_statuses:\n        - 500\n        - 600"}, "models[0].circuit_breaker.failure_statuses[1]", "- 600", 1, "must be an HTTP status from 100 to 599, got 600", 0},
		{"failure status duplicate", []string{"failure_ratio: 0.5", "failure_statuses: [500, 503, 500]"}, "models[0].circuit_breaker.failure_statuses[2]", "failure_statuses", 1, "duplicate status 500 (also failure_statuses[0])", 0},
		{"retry status duplicate", []string{"attempts: 2", "attempts: 2\n      on_statuses: [503, 503]"}, "models[0].retry.on_statuses[1]", "on_statuses", 1, "duplicate status 503 (also on_statuses[0])", 0},
		{"retry status out of range", []string{"attempts: 2", "attempts: 2\n      on_statuses: [502, 0, 1000]"}, "models[0].retry.on_statuses[2]", "on_statuses", 1, "got 1000", 2},
		{"min concurrent negative", []string{"attempts: 2", "attempts: 2\n      min_concurrent: -1"}, "models[0].retry.min_concurrent", "min_concurrent", 1, "must be >= 0, got -1", 0},
	})
}

// Values at the edge of each rule are accepted as written.
func TestAcceptedEdges(t *testing.T) {
	tests := []struct {
		name  string
		edits []string
		check func(t *testing.T, c *Config)
	}{
		{"one weight zero", []string{"weight: 10", "weight: 0"}, func(t *testing.T, c *Config) {
			assert.Zero(t, c.Models[0].Versions[1].Weight)
		}},
		{"fractional weights", []string{"weight: 90", "weight: 0.5", "weight: 10", "weight: 1e-3"}, func(t *testing.T, c *Config) {
			assert.Equal(t, 0.001, c.Models[0].Versions[1].Weight)
		}},
		{"both listeners on port 0", []string{"listen: 127.0.0.1:8080", "listen: 127.0.0.1:0", "listen: 127.0.0.1:9901", "listen: 127.0.0.1:0"}, nil},
		{"same port on other hosts", []string{"  listen: 127.0.0.1:9901", "  listen: 127.0.0.2:8080"}, nil},
		{"ipv6 endpoint and trailing slash", []string{"http://127.0.0.1:8501", "http://[::1]:8501/"}, nil},
		{"fallback with redistribute", []string{"on_unhealthy: redistribute", "on_unhealthy: redistribute\n      fallback: v1"}, nil},
		{"fallback policy", []string{"on_unhealthy: redistribute", "on_unhealthy: fallback\n      fallback: v2"}, nil},
		{"zero ratios and body", []string{"sample_rate: 1.0", "sample_rate: 0\n      max_body_bytes: 0", "attempts: 2", "attempts: 1\n      budget_ratio: 0"}, nil},
		{"failure ratio one", []string{"failure_ratio: 0.5", "failure_ratio: 1"}, nil},
		{"health timeout equals interval", []string{"timeout: 1s", "timeout: 5s"}, nil},
		{"reference version", []string{"warmup: 100", "version: v1"}, func(t *testing.T, c *Config) {
			assert.Equal(t, Reference{Version: "v1"}, c.Models[0].Monitor.Reference)
		}},
		{"host only matcher", []string{"path_prefix: /v1/models/wine", "host: wine.internal"}, nil},
		{"same prefix other header", []string{"path_prefix: /v1/models/wine", "path_prefix: /v1/models/iris"}, nil},
		{"name with dots and dashes", []string{"- name: wine", "- name: 0wine.v-2_x"}, nil},
		{"edge statuses and zero limits", []string{"failure_ratio: 0.5", "failure_statuses: [100, 599]", "attempts: 2", "attempts: 2\n      min_concurrent: 0", "    retry:", "    limits: {endpoint_concurrency: 0}\n    retry:"}, func(t *testing.T, c *Config) {
			m := c.Models[0]
			assert.Equal(t, []int{100, 599}, m.CircuitBreaker.FailureStatuses)
			assert.Zero(t, m.Retry.MinConcurrent)
			assert.Zero(t, m.Limits.EndpointConcurrency)
			assert.Equal(t, []int{502, 503, 504}, m.Retry.OnStatuses, "absent: default")
		}},
		{"empty status lists", []string{"failure_ratio: 0.5", "failure_statuses: []", "attempts: 2", "attempts: 2\n      on_statuses: []"}, func(t *testing.T, c *Config) {
			m := c.Models[0]
			assert.Empty(t, m.CircuitBreaker.FailureStatuses, "only transport errors count")
			assert.Empty(t, m.Retry.OnStatuses, "no status is retried")
		}},
		{"sampling and concurrency set", []string{"  drain_timeout: 10s", "  drain_timeout: 10s\nsampling: {queue_size: 1, workers: 8}", "    retry:", "    limits: {endpoint_concurrency: 64}\n    retry:"}, func(t *testing.T, c *Config) {
			assert.Equal(t, Sampling{QueueSize: 1, Workers: 8}, c.Sampling)
			assert.Equal(t, 64, c.Models[0].Limits.EndpointConcurrency)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, edit(t, tt.edits...))
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}
