package configs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Config built in code gets the same defaults as the file that sets the
// same keys.
func TestApplyDefaultsMatchesParse(t *testing.T) {
	parsed := mustParse(t, `
models:
  - name: iris
    match:
      path_prefix: /
    protocol: kserve-v1
    monitor:
      features: [a, b]
    versions:
      - name: v1
        weight: 80
        endpoints: ["http://127.0.0.1:8501"]
      - name: v2
        weight: 0
        endpoints: ["http://127.0.0.1:8502"]
`)
	built := &Config{Models: []Model{{
		Name:     "iris",
		Match:    Match{PathPrefix: "/"},
		Protocol: ProtocolKServeV1,
		Monitor:  Monitor{Features: []string{"a", "b"}},
		Versions: []Version{
			{Name: "v1", Weight: 80, Endpoints: []string{"http://127.0.0.1:8501"}},
			{Name: "v2", Endpoints: []string{"http://127.0.0.1:8502"}},
		},
	}}}
	ApplyDefaults(built)
	require.NoError(t, built.Validate())
	// The keys whose zero is a setting keep it in code: set them as the
	// file's defaults did.
	m := &built.Models[0]
	assert.Zero(t, m.Monitor.SampleRate, "a zero sample rate is a setting, not unset")
	assert.Zero(t, m.Monitor.MaxAge, "max_age 0 closes windows only when full")
	assert.Zero(t, m.Retry.BudgetRatio)
	assert.Zero(t, m.Routing.ShadowRate)
	m.Monitor.SampleRate, m.Monitor.MaxAge = DefaultSampleRate, DefaultMaxAge
	m.Monitor.MaxBodyBytes = DefaultMaxBodyBytes
	m.Retry.BudgetRatio, m.Retry.MinConcurrent = DefaultBudgetRatio, DefaultMinConcurrent
	m.Routing.ShadowRate = DefaultShadowRate
	built.AccessLog.SampleRate = DefaultAccessLogSampleRate
	assert.Equal(t, parsed, built)
	assert.False(t, m.Rollout.Enabled(), "no rollout was set, none is defaulted into being")
}

// Applying the defaults again to a parsed config changes nothing: what the
// file set, zeros included, is kept.
func TestApplyDefaultsKeepsAParsedConfig(t *testing.T) {
	for _, name := range Examples() {
		raw, err := Example(name)
		require.NoError(t, err)
		cfg, err := Parse(raw)
		require.NoError(t, err, name)
		again, err := Parse(raw)
		require.NoError(t, err)
		ApplyDefaults(again)
		assert.Equal(t, cfg, again, name)
	}
	cfg := mustParse(t, `
models:
  - name: iris
    match: {path_prefix: /}
    circuit_breaker: {failure_statuses: []}
    retry: {on_statuses: [], budget_ratio: 0}
    monitor: {sample_rate: 0, max_age: 0s, reference: {warmup: 5}, window: 4}
    versions:
      - {name: v1, weight: 1, endpoints: ["http://127.0.0.1:8501"]}
`)
	again := *cfg
	again.Models = []Model{cfg.Models[0]}
	ApplyDefaults(&again)
	assert.Equal(t, cfg, &again)
	assert.Empty(t, again.Models[0].CircuitBreaker.FailureStatuses)
	assert.NotNil(t, again.Models[0].CircuitBreaker.FailureStatuses, "an empty list is set: no status is a failure")
}

// A rollout set in code gets its defaults.
func TestApplyDefaultsFillsASetRollout(t *testing.T) {
	c := &Config{Models: []Model{{Name: "m", Rollout: Rollout{Candidate: "v2"}}}}
	ApplyDefaults(c)
	r := c.Models[0].Rollout
	assert.Equal(t, DefaultRolloutSteps(), r.Steps)
	assert.Equal(t, DefaultRolloutInterval, r.Interval)
	assert.Equal(t, DefaultHealthInterval, c.Models[0].Health.Interval)
	assert.Equal(t, 5*time.Minute, r.Interval)
}
