package configs

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const rolloutBlock = `    rollout:
      candidate: v2
`

func withRollout(t *testing.T, block string) string {
	t.Helper()
	return edit(t, "    health:\n", block+"    health:\n")
}

func TestRolloutDefaults(t *testing.T) {
	cfg := mustParse(t, withRollout(t, rolloutBlock))
	r := cfg.Models[0].Rollout
	assert.True(t, r.Enabled())
	assert.Equal(t, DefaultRolloutSteps(), r.Steps)
	assert.Equal(t, 5*time.Minute, r.Interval)
	assert.Equal(t, OnFailRollback, r.OnFail)
	assert.Equal(t, Gates{MinRequests: 100, MaxErrorRatio: 2, ErrorRateFloor: 0.01, MaxP99Ratio: 1.5, P99Floor: 10 * time.Millisecond, NoDrift: true}, r.Gates)
	assert.False(t, cfg.Models[1].Rollout.Enabled(), "a model without the key has no rollout")

	off := mustParse(t, withRollout(t, rolloutBlock+"      gates: {no_drift: false}\n"))
	assert.False(t, off.Models[0].Rollout.Gates.NoDrift, "an explicit false is kept")
}

func TestRolloutRules(t *testing.T) {
	for _, tc := range []struct {
		name, block, path, msg string
	}{
		{"no candidate", "    rollout:\n      interval: 1m\n", "models[0].rollout.candidate", "is required"},
		{"unknown candidate", "    rollout:\n      candidate: v9\n", "models[0].rollout.candidate", `must name a version of this model ("v1", "v2"); got "v9"`},
		{"baseline is candidate", rolloutBlock + "      baseline: v2\n", "models[0].rollout.baseline", "must differ"},
		{"steps not increasing", rolloutBlock + "      steps: [5, 5, 100]\n", "models[0].rollout.steps[1]", "must be greater than the step before (5)"},
		{"last step not 100", rolloutBlock + "      steps: [1, 50]\n", "models[0].rollout.steps[1]", "the last step must be 100"},
		{"step out of range", rolloutBlock + "      steps: [0, 100]\n", "models[0].rollout.steps[0]", "must be a percentage > 0"},
		{"bad on_fail", rolloutBlock + "      on_fail: panic\n", "models[0].rollout.on_fail", "must be rollback or pause"},
		{"zero interval", rolloutBlock + "      interval: 0s\n", "models[0].rollout.interval", "must be > 0"},
		{"zero min_requests", rolloutBlock + "      gates: {min_requests: 0}\n", "models[0].rollout.gates.min_requests", "must be >= 1"},
		{"zero floor", rolloutBlock + "      gates: {error_rate_floor: 0}\n", "models[0].rollout.gates.error_rate_floor", "must be > 0 and <= 1"},
		{"unknown gate", rolloutBlock + "      gates: {max_errors: 3}\n", "models[0].rollout.gates.max_errors", "unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(withRollout(t, tc.block)))
			var probs Errors
			require.True(t, errors.As(err, &probs), "want Errors, got %v", err)
			require.Len(t, probs, 1, err.Error())
			assert.Equal(t, tc.path, probs[0].Path)
			assert.Contains(t, probs[0].Msg, tc.msg)
			assert.NotZero(t, probs[0].Line)
			assert.True(t, strings.Contains(err.Error(), "(line "), err.Error())
		})
	}
}
