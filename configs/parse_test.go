package configs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mustParse parses src and fails the test on any problem.
func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(src))
	require.NoError(t, err)
	require.NotNil(t, cfg)
	return cfg
}

// problems parses src, requires it to fail, and returns its problems.
func problems(t *testing.T, src string) Errors {
	t.Helper()
	cfg, err := Parse([]byte(src))
	require.Error(t, err)
	assert.Nil(t, cfg)
	var errs Errors
	require.ErrorAs(t, err, &errs)
	require.NotEmpty(t, errs)
	return errs
}

// lineOf is the 1-based line of the nth (from 1) line of src that
// contains marker.
func lineOf(t *testing.T, src, marker string, nth int) int {
	t.Helper()
	if nth == 0 {
		nth = 1
	}
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, marker) {
			if nth--; nth == 0 {
				return i + 1
			}
		}
	}
	t.Fatalf("marker %q not found in\n%s", marker, src)
	return 0
}

// at returns the problem at path, failing the test when there is none.
func at(t *testing.T, errs Errors, path string) Problem {
	t.Helper()
	for _, p := range errs {
		if p.Path == path {
			return p
		}
	}
	t.Fatalf("no problem at %s; got:\n%v", path, errs)
	return Problem{}
}

const minimalYAML = `
models:
  - name: iris
    match:
      path_prefix: /
    versions:
      - name: v1
        endpoints: ["http://127.0.0.1:8501"]
`

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, minimalYAML)
	want := &Config{
		Listen:    "127.0.0.1:8080",
		Admin:     Admin{Listen: "127.0.0.1:9901"},
		Shutdown:  Shutdown{DrainTimeout: 30 * time.Second},
		Sampling:  Sampling{QueueSize: 4096, Workers: 1},
		Shadowing: Shadowing{QueueSize: 1024, Concurrency: 16},
		Feedback:  Feedback{MaxEntries: 100000, TTL: time.Hour},
		AccessLog: AccessLog{SampleRate: 1},
		Models: []Model{{
			Name:     "iris",
			Match:    Match{PathPrefix: "/"},
			Protocol: ProtocolRaw,
			Timeout:  30 * time.Second,
			Routing:  Routing{OnUnhealthy: "redistribute", ShadowRate: 1, ShadowTimeout: 30 * time.Second},
			Versions: []Version{{Name: "v1", Weight: 1, Endpoints: []string{"http://127.0.0.1:8501"}}},
			Health: Health{Path: "/", Interval: 5 * time.Second, Timeout: time.Second,
				HealthyThreshold: 2, UnhealthyThreshold: 3},
			CircuitBreaker: CircuitBreaker{FailureRatio: 0.5, MinRequests: 20,
				Window: 30 * time.Second, OpenFor: 10 * time.Second, HalfOpenRequests: 5,
				FailureStatuses: []int{500, 502, 503, 504}},
			Retry: Retry{Attempts: 2, BudgetRatio: 0.2, MinConcurrent: 3, OnStatuses: []int{502, 503, 504}},
			Monitor: Monitor{SampleRate: 1, MaxBodyBytes: 1048576, Window: 1000,
				Reference: Reference{Warmup: 10000},
				MaxAge:    5 * time.Minute, MinWindow: 100, Bins: 10, Consecutive: 2,
				Detector: DetectorCUSUM, FalseAlarmRate: 0.001,
				Correction: "bonferroni",
				Thresholds: Thresholds{KS: 0.01, Chi2: 0.01, PSI: 0.2, JS: 0.1, Wasserstein: 0.1},
				AlertOn:    []string{"ks", "chi2"}, AlertSeverity: "warning"},
			Limits: Limits{EndpointConcurrency: 0, MaxResponseBytes: 64 << 20},
		}},
	}
	assert.Equal(t, want, cfg)
}

func TestNullIsAbsent(t *testing.T) {
	cfg := mustParse(t, minimalYAML+`
listen: ~
admin:
shutdown: {drain_timeout: null}
`)
	assert.Equal(t, DefaultListen, cfg.Listen)
	assert.Equal(t, DefaultAdminListen, cfg.Admin.Listen)
	assert.Equal(t, DefaultDrain, cfg.Shutdown.DrainTimeout)
}

func TestHealthPathByProtocol(t *testing.T) {
	for proto, want := range map[Protocol]string{
		ProtocolKServeV1:  "/v1/models/iris",
		ProtocolTFServing: "/v1/models/iris",
		ProtocolKServeV2:  "/v2/models/iris/ready",
		ProtocolMLflow:    "/ping",
		ProtocolOpenAI:    "/health",
		ProtocolGRPC:      "",
		ProtocolRaw:       "/",
	} {
		t.Run(string(proto), func(t *testing.T) {
			scheme := "http"
			if proto == ProtocolGRPC {
				scheme = "h2c"
			}
			cfg := mustParse(t, `
models:
  - name: iris
    match: {path_prefix: /}
    protocol: `+string(proto)+`
    versions: [{name: v1, endpoints: ["`+scheme+`://127.0.0.1:8501"]}]
`)
			assert.Equal(t, want, cfg.Models[0].Health.Path)
		})
	}
	t.Run("explicit path wins", func(t *testing.T) {
		cfg := mustParse(t, strings.Replace(minimalYAML, "    versions:", "    health: {path: /ready}\n    versions:", 1))
		assert.Equal(t, "/ready", cfg.Models[0].Health.Path)
	})
}

// Keys whose zero is meaningful take their default only when absent.
func TestAbsentVersusZero(t *testing.T) {
	base := `
models:
  - name: iris
    match: {path_prefix: /}
    retry: {%s}
    monitor: {%s}
    versions:
      - {name: v1, %s endpoints: ["http://127.0.0.1:8501"]}
      - {name: v2, weight: 3, endpoints: ["http://127.0.0.1:8502"]}
`
	tests := []struct {
		name                 string
		retry, monitor, ver  string
		weight, budget, rate float64
	}{
		{"absent", "", "", "", 1, 0.2, 1.0},
		{"explicit zero", "budget_ratio: 0", "sample_rate: 0", "weight: 0,", 0, 0, 0},
		{"explicit zero float", "budget_ratio: 0.0", "sample_rate: 0.0", "weight: 0.0,", 0, 0, 0},
		{"explicit values", "budget_ratio: 0.5", "sample_rate: 0.25", "weight: 2.5,", 2.5, 0.5, 0.25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := replaceN(base, tt.retry, tt.monitor, tt.ver)
			m := mustParse(t, src).Models[0]
			assert.Equal(t, tt.weight, m.Versions[0].Weight, "weight")
			assert.Equal(t, 3.0, m.Versions[1].Weight, "weight of v2")
			assert.Equal(t, tt.budget, m.Retry.BudgetRatio, "budget_ratio")
			assert.Equal(t, tt.rate, m.Monitor.SampleRate, "sample_rate")
		})
	}
}

// replaceN fills the %s markers of s in order.
func replaceN(s string, args ...string) string {
	for _, a := range args {
		s = strings.Replace(s, "%s", a, 1)
	}
	return s
}

func TestReferenceDefault(t *testing.T) {
	base := strings.Replace(minimalYAML, "    versions:", "    monitor: {reference: {%s}}\n    versions:", 1)
	tests := []struct {
		ref  string
		want Reference
	}{
		{"", Reference{Warmup: 10000}},
		{"warmup: 5", Reference{Warmup: 5}},
		{"file: refs/iris.json", Reference{File: "refs/iris.json"}},
		{"version: v1", Reference{Version: "v1"}},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			cfg := mustParse(t, replaceN(base, tt.ref))
			assert.Equal(t, tt.want, cfg.Models[0].Monitor.Reference)
		})
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	cfg := mustParse(t, `
models:
  - name: a
    match: {path_prefix: /a}
    health: &fast {interval: 2s, timeout: 500ms}
    versions: &vs [{name: v1, endpoints: ["http://127.0.0.1:1"]}]
  - name: b
    match: {path_prefix: /b}
    health:
      <<: *fast
      timeout: 2s
    versions: *vs
`)
	assert.Equal(t, 2*time.Second, cfg.Models[1].Health.Interval, "merged")
	assert.Equal(t, 2*time.Second, cfg.Models[1].Health.Timeout, "own key wins over merged")
	assert.Equal(t, 500*time.Millisecond, cfg.Models[0].Health.Timeout)
	assert.Equal(t, cfg.Models[0].Versions, cfg.Models[1].Versions)
}

func TestFileLevelProblems(t *testing.T) {
	tests := []struct {
		name, src, msg string
		line           int
	}{
		{"empty file", "", "at least one model is required", 0},
		{"only comments", "# nothing\n", "at least one model is required", 0},
		{"empty models", "models: []\n", "at least one model is required", 1},
		{"null models", "models:\n", "at least one model is required", 1},
		{"syntax error", "models:\n  - name: [\n", "invalid YAML", 2},
		{"tab indentation", "models:\n\t- name: x\n", "invalid YAML", 2},
		{"two documents", minimalYAML + "---\nlisten: x\n", "more than one YAML document", 9},
		{"top level is a list", "- a\n- b\n", "must be a mapping", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := problems(t, tt.src)
			require.Len(t, errs, 1, "%v", errs)
			assert.Contains(t, errs[0].Msg, tt.msg)
			assert.Equal(t, tt.line, errs[0].Line)
		})
	}
}

func TestProblemString(t *testing.T) {
	assert.Equal(t, "models[0].versions[1].weight (line 12): must be >= 0, got -5",
		Problem{Path: "models[0].versions[1].weight", Line: 12, Msg: "must be >= 0, got -5"}.String())
	assert.Equal(t, "models: at least one model is required",
		Problem{Path: "models", Msg: "at least one model is required"}.String())
	assert.Equal(t, "config (line 3): invalid YAML: x", Problem{Line: 3, Msg: "invalid YAML: x"}.String())
	errs := Errors{{Path: "a", Line: 1, Msg: "x"}, {Path: "b", Msg: "y"}}
	assert.Equal(t, "a (line 1): x\nb: y", errs.Error())
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte(minimalYAML), 0o600))
	cfg, data, err := Load(good)
	require.NoError(t, err)
	assert.Equal(t, "iris", cfg.Models[0].Name)
	assert.Equal(t, minimalYAML, string(data))

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("listen: 1\n"), 0o600))
	cfg, data, err = Load(bad)
	assert.Nil(t, cfg)
	assert.Equal(t, "listen: 1\n", string(data), "bytes come back even when invalid")
	var errs Errors
	require.ErrorAs(t, err, &errs)
	assert.Len(t, errs, 2, "bad listen and no models: %v", errs)

	_, data, err = Load(filepath.Join(dir, "missing.yaml"))
	assert.Nil(t, data)
	assert.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)
	assert.False(t, errors.As(err, &errs), "a read error is not Errors")
}

func TestHash(t *testing.T) {
	h := Hash([]byte(minimalYAML))
	assert.Len(t, h, 16)
	assert.Regexp(t, "^[0-9a-f]{16}$", h)
	assert.Equal(t, h, Hash([]byte(minimalYAML)))
	assert.NotEqual(t, h, Hash([]byte(minimalYAML+" ")))
	// First 16 hex digits of sha256("").
	assert.Equal(t, "e3b0c44298fc1c14", Hash(nil))
}

func TestValidateInCode(t *testing.T) {
	cfg := mustParse(t, minimalYAML)
	require.NoError(t, cfg.Validate(), "a parsed config validates again")
	cfg.Models[0].Versions[0].Weight = -1
	cfg.Models[0].Retry.Attempts = 0
	var errs Errors
	require.ErrorAs(t, cfg.Validate(), &errs)
	assert.Len(t, errs, 3, "%v", errs) // weight, no weight > 0, attempts
	assert.Zero(t, at(t, errs, "models[0].versions[0].weight").Line, "no lines for configs built in code")

	var zero Config
	require.ErrorAs(t, zero.Validate(), &errs)
	at(t, errs, "listen")
	at(t, errs, "models")
}
