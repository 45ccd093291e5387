package monitor

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

func TestHandlerServesContractShape(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 50, Reference: configs.Reference{Warmup: 50}, Features: []string{"x"}}
	require.NoError(t, f.m.Configure(config(model("iris", mon, "v1"), model("other", mon, "v1"))))
	rng := rand.New(rand.NewPCG(11, 11))
	f.feedRows("iris", "v1", normals(rng, 100, 1))
	srv := httptest.NewServer(f.m.Handler())
	t.Cleanup(srv.Close)

	get := func(query string) (*http.Response, map[string]any) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + "/drift" + query)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp, body
	}
	resp, body := get("")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	models := body["models"].([]any)
	require.Len(t, models, 2)
	m0 := models[0].(map[string]any)
	assert.Equal(t, "iris", m0["model"])
	v := m0["versions"].([]any)[0].(map[string]any)
	for _, key := range []string{"version", "reference_size", "window_size", "windows_closed", "features",
		"reference_source", "current_window_rows", "samples", "decode_errors"} {
		assert.Contains(t, v, key)
	}
	assert.EqualValues(t, 50, v["reference_size"])
	assert.EqualValues(t, 50, v["window_size"])
	assert.EqualValues(t, 1, v["windows_closed"])
	feat := v["features"].([]any)[0].(map[string]any)
	assert.Equal(t, "x", feat["feature"])
	assert.Equal(t, "numeric", feat["kind"])
	assert.Contains(t, feat, "drifted")
	tests := feat["tests"].([]any)
	methods := []string{}
	for _, tt := range tests {
		tm := tt.(map[string]any)
		methods = append(methods, tm["method"].(string))
		for _, key := range []string{"statistic", "threshold", "drifted"} {
			assert.Contains(t, tm, key)
		}
		if tm["method"] == "ks" {
			assert.Contains(t, tm, "p_value")
			assert.Contains(t, tm, "p_value_adjusted")
		} else {
			assert.NotContains(t, tm, "p_value")
		}
	}
	assert.Equal(t, []string{"ks", "psi", "js", "wasserstein"}, methods)

	_, body = get("?model=other")
	models = body["models"].([]any)
	require.Len(t, models, 1)
	assert.Equal(t, "other", models[0].(map[string]any)["model"])

	resp, body = get("?model=nope")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "nope", body["model"])
	assert.NotEmpty(t, body["error"])

	post, err := srv.Client().Post(srv.URL+"/drift", "application/json", nil)
	require.NoError(t, err)
	post.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, post.StatusCode)
}

func TestReportBeforeConfigure(t *testing.T) {
	f := newFixture(t, Options{})
	data, err := json.Marshal(f.m.Report())
	require.NoError(t, err)
	assert.JSONEq(t, `{"models":[]}`, string(data))
}

func TestFinite(t *testing.T) {
	assert.Equal(t, 0.0, finite(math.NaN()))
	assert.Equal(t, math.MaxFloat64, finite(math.Inf(1)))
	assert.Equal(t, 1.5, finite(1.5))
}

func TestMetricsRegisterTwiceFails(t *testing.T) {
	f := newFixture(t, Options{})
	_, err := New(Options{Registerer: f.reg})
	assert.Error(t, err)
	m, err := New(Options{}) // nil Registerer: registers nowhere
	require.NoError(t, err)
	assert.NotNil(t, m)
}

// TestMetricsLint checks every monitor metric with client_golang's
// promlint (the linter behind promtool check metrics) once each has a
// series.
func TestMetricsLint(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 20, Reference: configs.Reference{Warmup: 20}, Features: []string{"x"}}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	f.feedRows("m", "v1", normals(rand.New(rand.NewPCG(12, 12)), 40, 1))
	f.feed("m", "v1", "not json", "")
	f.feed("m", "v1", `{"instances":[{"x":"text"}]}`, "")
	f.m.Drop("m", ReasonQueueFull)

	mfs, err := f.reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, name := range []string{"vane_monitor_samples_total", "vane_monitor_samples_dropped_total",
		"vane_monitor_decode_errors_total", "vane_monitor_rows_total", "vane_monitor_windows_closed_total",
		"vane_monitor_queue_length", "vane_monitor_queue_capacity", "vane_drift_score", "vane_drift_detected",
		"vane_monitor_webhook_errors_total", "vane_monitor_webhook_sent_total", "vane_monitor_features_ignored_total",
		"vane_monitor_values_skipped_total", "vane_monitor_reference_ready", "vane_monitor_reference_rows"} {
		assert.True(t, names[name], "metric %s has no series", name)
	}
	problems, err := testutil.GatherAndLint(f.reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}
