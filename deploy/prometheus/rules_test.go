// Package prometheus holds vane's Prometheus recording rules; its tests
// run them through promtool and check their figures against
// monitor/stats.
package prometheus

import (
	"context"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/vaneproxy/vane/internal/testutil"
	"github.com/vaneproxy/vane/monitor/stats"
)

// TestFleetRulesPromtool checks the rules and runs their unit tests with
// promtool. Without promtool on PATH it is skipped, except in CI
// (CI set), where it fails: CI must install it (Debian: prometheus).
func TestFleetRulesPromtool(t *testing.T) {
	promtool := testutil.Promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "drift-fleet.rules.yaml"},
		{"test", "rules", "drift-fleet.rules.test.yaml"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, promtool, args...).CombinedOutput()
		cancel()
		require.NoError(t, err, "promtool %v:\n%s", args, out)
	}
}

// ruleTests is the part of a promtool test file read here.
type ruleTests struct {
	Tests []struct {
		InputSeries []struct {
			Series string `yaml:"series"`
			Values string `yaml:"values"`
		} `yaml:"input_series"`
		PromQLExprTest []struct {
			Expr       string `yaml:"expr"`
			ExpSamples []struct {
				Value float64 `yaml:"value"`
			} `yaml:"exp_samples"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

var (
	seriesRe = regexp.MustCompile(`^(\w+)\{instance="(\w+)",.*bin="(\d+)"\}$`)
	valuesRe = regexp.MustCompile(`^0\+(\d+)x60$|^(\d+)x60$`)
)

// TestFleetRulesFigures recomputes the figures the promtool test expects
// from its input series with monitor/stats: fleet-wide PSI and chi-square
// are the single-replica statistics on the replicas' summed counts.
func TestFleetRulesFigures(t *testing.T) {
	data, err := os.ReadFile("drift-fleet.rules.test.yaml")
	require.NoError(t, err)
	var rt ruleTests
	require.NoError(t, yaml.Unmarshal(data, &rt))
	require.Len(t, rt.Tests, 1)
	live := make([]float64, 4)
	ref := make([]float64, 4)
	refSeen := map[string]bool{}
	for _, s := range rt.Tests[0].InputSeries {
		m := seriesRe.FindStringSubmatch(s.Series)
		require.NotNil(t, m, s.Series)
		bin, _ := strconv.Atoi(m[3])
		v := valuesRe.FindStringSubmatch(s.Values)
		require.NotNil(t, v, s.Values)
		switch m[1] {
		case "vane_monitor_bin_total":
			perMinute, _ := strconv.ParseFloat(v[1], 64)
			live[bin] += 60 * perMinute // increase over the hour
		case "vane_monitor_reference_bin_values":
			if !refSeen[m[2]] && len(refSeen) > 0 {
				continue // the replicas share one reference
			}
			refSeen[m[2]] = true
			ref[bin], _ = strconv.ParseFloat(v[2], 64)
		}
	}
	want := map[string]float64{}
	want["vane:drift_psi:fleet1h"] = stats.PSI(stats.Proportions(ref), stats.Proportions(live))
	chi2, _, dof := stats.Pearson(ref, live)
	want["vane:drift_chi2:fleet1h"] = chi2
	want["vane:drift_chi2_dof:fleet1h"] = float64(dof)
	lp, rp := stats.Proportions(live), stats.Proportions(ref)
	ks, cl, cr := 0.0, 0.0, 0.0
	for i := range lp {
		cl, cr = cl+lp[i], cr+rp[i]
		ks = math.Max(ks, math.Abs(cl-cr))
	}
	want["vane:drift_ks_binned:fleet1h"] = ks
	checked := 0
	for _, e := range rt.Tests[0].PromQLExprTest {
		w, ok := want[e.Expr]
		if !ok {
			continue
		}
		require.Len(t, e.ExpSamples, 1, e.Expr)
		assert.InEpsilon(t, w, e.ExpSamples[0].Value, 1e-12, e.Expr)
		checked++
	}
	assert.Equal(t, len(want), checked, "every figure is tested by promtool")
}
