package configs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// monitorKey adds key lines to models[0].monitor of baseYAML.
func monitorKey(lines string) []string {
	return []string{"sample_rate: 1.0", "sample_rate: 1.0\n      " + lines}
}

// asRaw turns models[0] of baseYAML into protocol raw with the given
// monitor lines in place of its features.
func asRaw(lines string) []string {
	return []string{"protocol: kserve-v1", "protocol: raw", "features: [a, b]", lines}
}

func TestMonitorRules(t *testing.T) {
	const th = "thresholds:\n        "
	runRules(t, []ruleCase{
		{"max age negative", monitorKey("max_age: -1s"), "models[0].monitor.max_age", "max_age", 1, "must be >= 0 (0 closes windows only when full), got -1s", 0},
		{"min window one", monitorKey("min_window: 1"), "models[0].monitor.min_window", "min_window: 1", 1, "must be >= 2 and <= monitor.window (1000), got 1", 0},
		{"min window above window", monitorKey("window: 50\n      min_window: 60"), "models[0].monitor.min_window", "min_window: 60", 1, "must be >= 2 and <= monitor.window (50), got 60", 0},
		{"min window with bad window", monitorKey("window: 0\n      min_window: 0"), "models[0].monitor.min_window", "min_window: 0", 1, "must be >= 2, got 0", 2},
		{"bins one", monitorKey("bins: 1"), "models[0].monitor.bins", "bins: 1", 1, "must be >= 2 and <= 1000, got 1", 0},
		{"bins too many", monitorKey("bins: 1001"), "models[0].monitor.bins", "bins: 1001", 1, "must be >= 2 and <= 1000, got 1001", 0},
		{"consecutive zero", monitorKey("consecutive: 0"), "models[0].monitor.consecutive", "consecutive: 0", 1, "must be >= 1, got 0", 0},
		{"correction unknown", monitorKey("correction: holm"), "models[0].monitor.correction", "correction: holm", 1, `must be one of bonferroni, fdr, none; got "holm"`, 0},
		{"detector unknown", monitorKey("detector: ewma"), "models[0].monitor.detector", "detector: ewma", 1, `must be one of cusum, window; got "ewma"`, 0},
		{"false alarm rate zero", monitorKey("false_alarm_rate: 0"), "models[0].monitor.false_alarm_rate", "false_alarm_rate: 0", 1, "must be > 0 and <= 0.1 (false alerts per window per version), got 0", 0},
		{"false alarm rate high", monitorKey("false_alarm_rate: 0.5"), "models[0].monitor.false_alarm_rate", "false_alarm_rate: 0.5", 1, "got 0.5", 0},
		{"65 features", []string{"features: [a, b]", "features: [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31, f32, f33, f34, f35, f36, f37, f38, f39, f40, f41, f42, f43, f44, f45, f46, f47, f48, f49, f50, f51, f52, f53, f54, f55, f56, f57, f58, f59, f60, f61, f62, f63, f64]"}, "models[0].monitor.features", "features: [f0", 1, "at most 64 features are monitored per version; got 65", 0},
		{"correction empty", monitorKey(`correction: ""`), "models[0].monitor.correction", "correction", 1, `got ""`, 0},

		{"ks zero", monitorKey(th + "ks: 0"), "models[0].monitor.thresholds.ks", "ks: 0", 1, "must be > 0 and < 1 (a p-value level), got 0", 0},
		{"ks one", monitorKey(th + "ks: 1"), "models[0].monitor.thresholds.ks", "ks: 1", 1, "must be > 0 and < 1", 0},
		{"chi2 NaN", monitorKey(th + "chi2: .nan"), "models[0].monitor.thresholds.chi2", "chi2: .nan", 1, "got NaN", 0},
		{"psi zero", monitorKey(th + "psi: 0"), "models[0].monitor.thresholds.psi", "psi: 0", 1, "must be a finite number > 0, got 0", 0},
		{"psi infinite", monitorKey(th + "psi: .inf"), "models[0].monitor.thresholds.psi", "psi: .inf", 1, "must be a finite number > 0, got +Inf", 0},
		{"wasserstein negative", monitorKey(th + "wasserstein: -0.1"), "models[0].monitor.thresholds.wasserstein", "wasserstein", 1, "got -0.1", 0},
		{"js above one", monitorKey(th + "js: 1.5"), "models[0].monitor.thresholds.js", "js: 1.5", 1, "must be > 0 and <= 1 (the base-2 Jensen-Shannon distance is at most 1), got 1.5", 0},
		{"js zero", monitorKey(th + "js: 0"), "models[0].monitor.thresholds.js", "js: 0", 1, "got 0", 0},

		{"alert on empty", monitorKey("alert_on: []"), "models[0].monitor.alert_on", "alert_on: []", 1, "must list at least one of ks, psi, js, wasserstein, chi2", 0},
		{"alert on unknown", monitorKey("alert_on:\n        - ks\n        - kl"), "models[0].monitor.alert_on[1]", "- kl", 1, `must be one of ks, psi, js, wasserstein, chi2; got "kl"`, 0},
		{"alert on duplicate", monitorKey("alert_on: [ks, psi, ks]"), "models[0].monitor.alert_on[2]", "alert_on", 1, `duplicate method "ks" (also alert_on[0])`, 0},

		{"webhook relative", monitorKey("webhook_url: /api/v2/alerts"), "models[0].monitor.webhook_url", "webhook_url", 1, "must be an absolute URL", 0},
		{"webhook scheme", monitorKey("webhook_url: ftp://am:9093/"), "models[0].monitor.webhook_url", "webhook_url", 1, `scheme must be http or https; got "ftp://am:9093/"`, 0},
		{"webhook without host", monitorKey("webhook_url: http:///api/v2/alerts"), "models[0].monitor.webhook_url", "webhook_url", 1, "must name a host", 0},
		{"webhook port", monitorKey("webhook_url: http://am:99999/api"), "models[0].monitor.webhook_url", "webhook_url", 1, "port must be a number from 1 to 65535", 0},
		{"webhook opaque", monitorKey("webhook_url: \"http:am:9093\""), "models[0].monitor.webhook_url", "webhook_url", 1, "must be an absolute URL", 0},

		{"paths without raw", monitorKey("paths: {x: inputs.0.x}"), "models[0].monitor.paths", "paths:", 1, "is only for protocol raw; protocol kserve-v1 decodes its features itself", 0},
		{"prediction path without raw", monitorKey("prediction_path: outputs.0"), "models[0].monitor.prediction_path", "prediction_path", 1, "is only for protocol raw; protocol kserve-v1", 0},
		{"features with raw", asRaw("features: [a]"), "models[0].monitor.features", "features: [a]", 1, "use monitor.paths for protocol raw", 0},
		{"raw path empty segment", asRaw("paths:\n        x: inputs..x"), "models[0].monitor.paths.x", "x: inputs..x", 1, `must be a dot path such as "inputs.0.x", with no empty segment; got "inputs..x"`, 0},
		{"raw path trailing dot", asRaw("paths: {x: inputs.0.}"), "models[0].monitor.paths.x", "paths:", 1, "with no empty segment", 0},
		{"raw path empty", asRaw("paths:\n        y: \"\""), "models[0].monitor.paths.y", `y: ""`, 1, "must be a dot path into the JSON", 0},
		{"raw path null", asRaw("paths:\n        y:"), "models[0].monitor.paths.y", "        y:", 1, "must be a dot path into the JSON", 0},
		{"raw path empty name", asRaw("paths:\n        \"\": inputs.0"), "models[0].monitor.paths.", `"": inputs.0`, 1, "feature name must not be empty", 0},
		{"raw prediction path leading dot", asRaw("prediction_path: .outputs"), "models[0].monitor.prediction_path", "prediction_path", 1, `got ".outputs"`, 0},
	})
}

// Values at the edge of each monitor rule are accepted as written.
func TestMonitorAcceptedEdges(t *testing.T) {
	tests := []struct {
		name  string
		edits []string
		check func(t *testing.T, mon Monitor)
	}{
		{"max age zero", monitorKey("max_age: 0s"), func(t *testing.T, mon Monitor) {
			assert.Zero(t, mon.MaxAge)
		}},
		{"min window two", monitorKey("min_window: 2"), func(t *testing.T, mon Monitor) {
			assert.Equal(t, 2, mon.MinWindow)
		}},
		{"min window equals window", monitorKey("window: 50\n      min_window: 50"), nil},
		{"small window is its own min window", monitorKey("window: 40"), func(t *testing.T, mon Monitor) {
			assert.Equal(t, 40, mon.MinWindow)
		}},
		{"window two", monitorKey("window: 2"), func(t *testing.T, mon Monitor) {
			assert.Equal(t, 2, mon.MinWindow)
		}},
		{"bins bounds", monitorKey("bins: 2"), nil},
		{"bins max", monitorKey("bins: 1000"), nil},
		{"fdr", monitorKey("correction: fdr"), nil},
		{"no correction", monitorKey("correction: none\n      consecutive: 1"), nil},
		{"threshold edges", monitorKey("thresholds: {ks: 0.999, chi2: 1e-9, psi: 1e9, js: 1, wasserstein: 1e-9}"), func(t *testing.T, mon Monitor) {
			assert.Equal(t, Thresholds{KS: 0.999, Chi2: 1e-9, PSI: 1e9, JS: 1, Wasserstein: 1e-9}, mon.Thresholds)
		}},
		{"every method", monitorKey("alert_on: [ks, psi, js, wasserstein, chi2]"), func(t *testing.T, mon Monitor) {
			assert.Equal(t, Methods(), mon.AlertOn)
		}},
		{"https webhook", monitorKey("webhook_url: https://am.example:9093/api/v2/alerts"), nil},
		{"webhook with ipv6 and user", monitorKey("webhook_url: http://u:p@[::1]:9093/api/v2/alerts"), nil},
		{"webhook empty", monitorKey(`webhook_url: ""`), nil},
		{"raw paths", asRaw("paths: {x: inputs.0.x, y: y}\n      prediction_path: outputs.0"), func(t *testing.T, mon Monitor) {
			assert.Equal(t, map[string]string{"x": "inputs.0.x", "y": "y"}, mon.Paths)
			assert.Equal(t, "outputs.0", mon.PredictionPath)
			assert.Empty(t, mon.Features)
		}},
		{"raw without paths", asRaw("window: 10"), nil},
		{"empty paths without raw", monitorKey("paths: {}"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, edit(t, tt.edits...))
			if tt.check != nil {
				tt.check(t, c.Models[0].Monitor)
			}
		})
	}
}

// A key the file leaves out takes its default, one by one; a key it sets
// is kept.
func TestMonitorDefaults(t *testing.T) {
	c := mustParse(t, edit(t, monitorKey("thresholds: {psi: 0.5}\n      max_age: ~\n      alert_on: ~")...))
	mon := c.Models[0].Monitor
	assert.Equal(t, Thresholds{KS: DefaultThresholdKS, Chi2: DefaultThresholdChi2, PSI: 0.5,
		JS: DefaultThresholdJS, Wasserstein: DefaultThresholdWasserstein}, mon.Thresholds)
	assert.Equal(t, DefaultMaxAge, mon.MaxAge, "null is absent")
	assert.Equal(t, DefaultAlertOn(), mon.AlertOn, "null is absent")
	assert.Equal(t, DefaultMinWindow, mon.MinWindow)
	assert.Equal(t, DefaultBins, mon.Bins)
	assert.Equal(t, DefaultConsecutive, mon.Consecutive)
	assert.Equal(t, CorrectionBonferroni, mon.Correction)
	assert.Equal(t, 5*time.Minute, mon.MaxAge)
}

// Default lists are fresh for every model: changing one changes no other.
func TestDefaultListsAreNotShared(t *testing.T) {
	c := mustParse(t, baseYAML)
	require.Len(t, c.Models, 2)
	a, b := &c.Models[0], &c.Models[1]
	a.CircuitBreaker.FailureStatuses[0] = 1
	a.Retry.OnStatuses[0] = 1
	a.Monitor.AlertOn[0] = "x"
	assert.Equal(t, DefaultFailureStatuses(), b.CircuitBreaker.FailureStatuses)
	assert.Equal(t, []int{500, 502, 503, 504}, DefaultFailureStatuses())
	assert.Equal(t, DefaultRetryOnStatuses(), b.Retry.OnStatuses)
	assert.Equal(t, []int{502, 503, 504}, DefaultRetryOnStatuses())
	assert.Equal(t, DefaultAlertOn(), b.Monitor.AlertOn)
	assert.Equal(t, []string{"ks", "chi2"}, DefaultAlertOn())
}

// A password in a webhook URL stays out of the problem.
func TestWebhookProblemHidesPassword(t *testing.T) {
	errs := problems(t, edit(t, monitorKey("webhook_url: ftp://user:s3cret@am:9093/")...))
	p := at(t, errs, "models[0].monitor.webhook_url")
	assert.NotContains(t, p.Msg, "s3cret")
	assert.Contains(t, p.Msg, "user:xxxxx@am:9093")
}

// Validate holds code-built configs to the same rules: a zero field that
// has a default is a problem, not silently fine.
func TestValidateZeroMonitor(t *testing.T) {
	c := mustParse(t, baseYAML)
	c.Models[0].Monitor.Bins = 0
	c.Models[0].Monitor.AlertOn = nil
	c.Sampling.Workers = 0
	err := c.Validate()
	require.Error(t, err)
	var errs Errors
	require.ErrorAs(t, err, &errs)
	assert.Len(t, errs, 3, "%v", errs)
	at(t, errs, "models[0].monitor.bins")
	at(t, errs, "models[0].monitor.alert_on")
	at(t, errs, "sampling.workers")
}
