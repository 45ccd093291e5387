package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/vaneproxy/vane/internal/testutil"
)

// ruleFile is the part of a Prometheus rule file the checks read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestRulesPassPromtool checks every rule file under prometheus/ with
// promtool check rules, and runs every unit-test file with promtool test
// rules.
func TestRulesPassPromtool(t *testing.T) {
	bin := testutil.Promtool(t)
	rules, err := filepath.Glob("prometheus/*.rules.yaml")
	require.NoError(t, err)
	require.Contains(t, rules, filepath.Join("prometheus", "vane.rules.yaml"))
	tests, err := filepath.Glob("prometheus/*.rules.test.yaml")
	require.NoError(t, err)
	require.Contains(t, tests, filepath.Join("prometheus", "vane.rules.test.yaml"))
	for _, f := range rules {
		if strings.HasSuffix(f, ".test.yaml") {
			continue
		}
		out, err := exec.Command(bin, "check", "rules", f).CombinedOutput()
		assert.NoError(t, err, "promtool check rules %s:\n%s", f, out)
	}
	for _, f := range tests {
		cmd := exec.Command(bin, "test", "rules", filepath.Base(f))
		cmd.Dir = filepath.Dir(f)
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "promtool test rules %s:\n%s", f, out)
	}
}

// TestRulesUseVaneMetrics: every vane metric a rule reads is one vane
// registers, and every alert the issue asks for exists and has a test.
func TestRulesUseVaneMetrics(t *testing.T) {
	known := vaneMetrics(t)
	raw, err := os.ReadFile("prometheus/vane.rules.yaml")
	require.NoError(t, err)
	var rf ruleFile
	require.NoError(t, yaml.Unmarshal(raw, &rf))
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			assert.Empty(t, unknownMetrics(r.Expr, known), "rule %s%s reads metrics vane does not export", r.Record, r.Alert)
			if r.Alert != "" {
				alerts[r.Alert] = true
			}
		}
	}
	tests, err := os.ReadFile("prometheus/vane.rules.test.yaml")
	require.NoError(t, err)
	for _, a := range []string{"VaneVersionErrorRatioHigh", "VaneLatencyP99High", "VaneEndpointDown",
		"VaneVersionStarved", "VaneCircuitBreakerOpen", "VaneConfigReloadFailed", "VaneDriftDetected",
		"VaneMonitorDroppingSamples", "VaneWebhookFailing", "VaneModelDown"} {
		assert.True(t, alerts[a], "alert %s missing", a)
		assert.Contains(t, string(tests), "alertname: "+a, "alert %s has no promtool test", a)
	}
}

func TestUnknownMetrics(t *testing.T) {
	known := map[string]bool{"vane_a": true, "vane_h_seconds": true}
	assert.Empty(t, unknownMetrics(`rate(vane_a[5m]) + vane_h_seconds_bucket + vane:rec:rate5m`, known))
	assert.Equal(t, []string{"vane_b", "vane_a_bucket"}, unknownMetrics(`vane_b / vane_a_bucket`, map[string]bool{"vane_x": true, "vane_a_bucket_": true}))
}
