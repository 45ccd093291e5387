package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/health"
	"github.com/vaneproxy/vane/monitor"
	"github.com/vaneproxy/vane/monitor/decode"
)

// atomicConfig is model iris with v1 and v2 (and v3 when v3URL is set),
// a drift monitor of the given window and reference, and an endpoint
// concurrency limit: a reload from one to another touches routing, health
// targets, monitor state, upstream settings and metrics at once.
func atomicConfig(v1URL, v2URL, v3URL string, w1 float64, window int, reference string, conc int, timeout string) string {
	v3 := ""
	if v3URL != "" {
		v3 = fmt.Sprintf("      - name: v3\n        weight: 10\n        endpoints: [%q]\n", v3URL)
	}
	return fmt.Sprintf(`
listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:1"
shutdown:
  drain_timeout: 5s
models:
  - name: iris
    match:
      path_prefix: /v1/models/iris
    protocol: kserve-v1
    timeout: %s
    limits:
      endpoint_concurrency: %d
    monitor:
      window: %d
      reference:
        %s
      features: [a, b, c, d]
    versions:
      - name: v1
        weight: %g
        endpoints: [%q]
      - name: v2
        weight: 10
        endpoints: [%q]
%s`, timeout, conc, window, reference, w1, v1URL, v2URL, v3)
}

// countingBackend is a backend that counts every request it gets, probes
// included.
func countingBackend(t *testing.T, version string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("X-Backend-Version", version)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"predictions":[1]}`)
	}))
	t.Cleanup(s.Close)
	return s, &n
}

// served is what a vane serves, as far as a reload can change it.
type served struct {
	Hash     string
	Status   Status
	Drift    monitor.Report
	Series   []string // every vane_ series but the reload outcome's, with the values of the gauges a reload sets
	Breakers map[string]*health.Breaker
	Budgets  []retryBudget
	Limits   []int
	Slack    []int64
	Watched  int // endpoints health knows of, among those of both configs
}

func observe(t *testing.T, v *vane, keys []string) served {
	t.Helper()
	snap := v.srv.snap.Load()
	o := served{Hash: snap.hash, Status: v.srv.Status(), Drift: v.srv.monitor.Report(),
		Breakers: map[string]*health.Breaker{}}
	for _, k := range keys {
		if b := v.srv.health.Breaker(k); b != nil {
			o.Breakers[k] = b
			o.Watched++
		}
	}
	for _, p := range snap.policies {
		o.Budgets = append(o.Budgets, p.budget)
	}
	for _, u := range snap.upstreams {
		o.Limits = append(o.Limits, u.limN)
		o.Slack = append(o.Slack, u.slack.Load())
	}
	families, err := v.reg.Gather()
	require.NoError(t, err)
	valued := map[string]bool{"vane_version_weight": true, "vane_version_share": true,
		"vane_endpoint_healthy": true, "vane_circuit_breaker_open": true, "vane_monitor_reference_ready": true}
	for _, f := range families {
		name := f.GetName()
		if !strings.HasPrefix(name, "vane_") || strings.HasPrefix(name, "vane_config_") {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			s := name + "{" + strings.Join(labels, ",") + "}"
			if valued[name] {
				s += fmt.Sprintf(" %g", m.GetGauge().GetValue())
			}
			o.Series = append(o.Series, s)
		}
	}
	slices.Sort(o.Series)
	return o
}

// waitRows waits until the monitor has taken n samples in all.
func waitRows(t *testing.T, v *vane, n uint64) {
	t.Helper()
	require.Eventually(t, func() bool {
		var rows uint64
		for _, m := range v.srv.monitor.Report().Models {
			for _, ver := range m.Versions {
				rows += ver.Samples
			}
		}
		return rows == n
	}, 5*time.Second, 5*time.Millisecond, "the monitor never took every sample")
}

// TestFailedReloadChangesNothing: a config that fails at any step after
// validation (the monitor's reference file, the routing table) leaves
// routing, health targets, breakers, monitor state, upstream settings,
// metrics and the served config hash exactly as they were, and the old
// config keeps serving; the same change without the fault then applies
// and hands the kept state over.
func TestFailedReloadChangesNothing(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	b3, b3hits := countingBackend(t, "v3")
	good := atomicConfig(b1.URL, b2.URL, "", 90, 50, "warmup: 100", 0, "2s")
	v := startVane(t, good)
	keys := []string{endpointKey("iris", "v1", b1.URL), endpointKey("iris", "v2", b2.URL),
		endpointKey("iris", "v3", b3.URL)}

	// Traffic fills the monitor's reference and the request series.
	const sent = 30 // rows, one per request
	for range sent {
		resp, _ := post(t, v.url+"/v1/models/iris:predict", `{"instances":[[1,2,3,4]]}`, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	waitRows(t, v, sent)
	before := observe(t, v, keys)
	require.Equal(t, 2, before.Watched)

	// The change: new weights, a new version on a new endpoint, a smaller
	// monitor window, an endpoint limit and a longer timeout.
	next := func(reference string) string {
		return atomicConfig(b1.URL, b2.URL, b3.URL, 50, 20, reference, 7, "3s")
	}
	missing := filepath.Join(t.TempDir(), "no-such-reference.json")
	stages := []struct {
		name  string
		apply func() error
	}{
		{"monitor reference file cannot be read", func() error {
			_, err := v.srv.ReloadBytes([]byte(next("file: " + missing)))
			return err
		}},
		{"routing table refuses an endpoint", func() error {
			raw := []byte(next("warmup: 100"))
			cfg, err := configs.Parse(raw)
			require.NoError(t, err)
			// Validation refuses such an endpoint in a file; a caller of
			// ApplyConfig is trusted, so routing is the step that fails.
			cfg.Models[0].Versions[2].Endpoints[0] = "ftp://127.0.0.1:1"
			_, err = v.srv.ApplyConfig(cfg, raw)
			return err
		}},
	}
	total := uint64(sent)
	for _, st := range stages {
		t.Run(st.name, func(t *testing.T) {
			require.Error(t, st.apply())
			after := observe(t, v, keys)
			assert.Equal(t, before, after)
			assert.Contains(t, metricsText(t, v.admin), "vane_config_last_reload_successful 0")
			for range 10 {
				resp, _ := post(t, v.url+"/v1/models/iris:predict", `{"instances":[[1,2,3,4]]}`, nil)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Contains(t, []string{"v1", "v2"}, resp.Header.Get("X-Backend-Version"))
			}
			resp, _ := post(t, v.url+"/v1/models/iris:predict", `{}`, map[string]string{"X-Vane-Version": "v3"})
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "v3 is not a version of the served config")
			assert.Zero(t, b3hits.Load(), "nothing may probe or call the endpoint of a rejected config")
		})
		total += 10
		waitRows(t, v, total)
		before = observe(t, v, keys) // the requests above moved counters, not series
	}

	// The same change without a fault applies, and keeps what survives.
	hash, err := v.srv.ReloadBytes([]byte(next("warmup: 100")))
	require.NoError(t, err)
	after := observe(t, v, keys)
	assert.Equal(t, hash, after.Hash)
	assert.NotEqual(t, before.Hash, after.Hash)
	assert.Equal(t, 3, after.Watched)
	for k, b := range before.Breakers {
		assert.Same(t, b, after.Breakers[k], "a surviving endpoint keeps its breaker")
	}
	for i, b := range before.Budgets {
		assert.Same(t, b, after.Budgets[i], "an unchanged retry config keeps its budget")
	}
	assert.Equal(t, []int{7, 7, 7}, after.Limits)
	assert.Equal(t, int64(3*time.Second/64), after.Slack[0])
	var v1 monitor.VersionReport
	for _, ver := range after.Drift.Models[0].Versions {
		if ver.Version == "v1" {
			v1 = ver
		}
	}
	assert.Equal(t, 20, v1.WindowSize)
	assert.Equal(t, before.Drift.Models[0].Versions[0].ReferenceSize, v1.ReferenceSize,
		"a window change keeps the learned reference")
	require.Eventually(t, func() bool { return b3hits.Load() > 0 }, 5*time.Second, 5*time.Millisecond,
		"the new endpoint is probed once committed")
	assert.Contains(t, metricsText(t, v.admin), "vane_config_last_reload_successful 1")
}

// A weight change that the running vane cannot apply (here: its monitor's
// reference file went away) is refused before the file is written: the
// file, the journal and the served config stay as they were, instead of
// a file that says one thing and a vane that serves another.
func TestWeightChangeThatCannotApplyLeavesTheFile(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.json")
	var profile bytes.Buffer
	_, err := monitor.BuildProfile(strings.NewReader(strings.Repeat(`{"instances":[[1,2,3,4]]}`+"\n", 20)),
		&decode.Spec{Protocol: configs.ProtocolKServeV1, Features: []string{"a", "b", "c", "d"}}, &profile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(ref, profile.Bytes(), 0o600))
	path := writeConfig(t, atomicConfig(b1.URL, b2.URL, "", 90, 50, "file: "+ref, 0, "2s"))
	v := startVaneFile(t, path, Options{RolloutTick: -1})
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	hash := v.srv.Status().ConfigHash

	require.NoError(t, os.Remove(ref))
	code, body := adminDo(t, http.MethodPut, v.admin+"/models/iris/weights", `{"v1":50,"v2":50}`, nil)
	assert.Equal(t, http.StatusInternalServerError, code)
	assert.Contains(t, body["error"], "the file is unchanged")
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after))
	assert.Equal(t, "v1=90 v2=10", servedWeights(v.srv))
	assert.Equal(t, hash, v.srv.Status().ConfigHash)
	ed, err := v.srv.weightEditor()
	require.NoError(t, err)
	hist, err := ed.History("iris")
	require.NoError(t, err)
	assert.Empty(t, hist, "nothing was changed, nothing is journaled")

	// With the reference back, the same change applies, file and vane alike.
	require.NoError(t, os.WriteFile(ref, profile.Bytes(), 0o600))
	code, body = adminDo(t, http.MethodPut, v.admin+"/models/iris/weights", `{"v1":50,"v2":50}`, nil)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "v1=50 v2=50", servedWeights(v.srv))
	assert.Equal(t, v.srv.Status().ConfigHash, body["config_hash"])
	cfg, _, err := configs.Load(path)
	require.NoError(t, err)
	assert.Equal(t, "v1=50 v2=50", configs.FormatWeights(configs.WeightsOf(cfg)[0].Versions))
}
