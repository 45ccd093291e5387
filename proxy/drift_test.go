package proxy

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/examples/toymodel/toy"
	"github.com/vaneproxy/vane/monitor"
	"github.com/vaneproxy/vane/monitor/stats"
)

// TestDriftThroughTheProxy is the drift monitor as a user meets it: rows
// sent one per request through vane to a KServe V1 backend; 1000 reference
// rows, then 1000 rows where one feature moves a lot and one a tiny bit.
// The last closed window's KS statistics must be exactly those of the
// values sent, and only the shifted feature may alert.
func TestDriftThroughTheProxy(t *testing.T) {
	be := httptest.NewServer(toy.New(toy.Options{Name: "iris", Version: "v1"}))
	defer be.Close()
	v := startVane(t, fmt.Sprintf(`
models:
  - name: iris
    match:
      path_prefix: /v1/models/iris
    protocol: kserve-v1
    versions:
      - name: v1
        endpoints: [%q]
    monitor:
      window: 500
      reference:
        warmup: 1000
      features: [a, b, c, d]
`, be.URL))

	rng := rand.New(rand.NewPCG(7, 11))
	rows := make([][4]float64, 2000)
	for i := range rows {
		for j := range 4 {
			rows[i][j] = 5 + rng.NormFloat64()
		}
		if i >= 1000 {
			rows[i][0] += 3    // a: a large shift
			rows[i][1] += 0.01 // b: a tiny one
		}
	}
	for i, r := range rows {
		body := fmt.Sprintf(`{"instances":[[%v,%v,%v,%v]]}`, r[0], r[1], r[2], r[3])
		resp, _ := post(t, v.url+"/v1/models/iris:predict", body, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "row %d", i)
	}
	var vr monitor.VersionReport
	require.Eventually(t, func() bool {
		vr = driftReport(t, v.admin).Models[0].Versions[0]
		return vr.WindowsClosed == 2
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, 1000, vr.ReferenceSize)
	assert.Equal(t, 500, vr.WindowSize)

	col := func(from, to, j int) []float64 {
		out := make([]float64, 0, to-from)
		for _, r := range rows[from:to] {
			out = append(out, r[j])
		}
		sort.Float64s(out)
		return out
	}
	for j, name := range []string{"a", "b", "c", "d"} {
		ref, live := col(0, 1000, j), col(1500, 2000, j)
		f := feature(t, vr, name)
		ks := testReport(t, f, "ks")
		assert.InDelta(t, ecdfDistance(ref, live), ks.Statistic, 1e-12, "feature %s", name)
		ks2 := stats.KS // the monitor's convention: exact where cheap, else asymptotic
		if !stats.KSExactCheap(len(ref), len(live)) {
			ks2 = stats.KSAsymptotic
		}
		_, p := ks2(ref, live)
		require.NotNil(t, ks.PValue)
		assert.InDelta(t, p, *ks.PValue, 1e-6*p+1e-300, "feature %s", name)
		if name == "a" {
			assert.True(t, f.Drifted, "a moved by 3 sd and must alert")
		} else if name != "b" {
			assert.False(t, f.Drifted, "%s did not move", name)
		}
	}
	page := metricsText(t, v.admin)
	assert.Contains(t, page, `vane_drift_detected{feature="a",model="iris",version="v1"} 1`)
	assert.Contains(t, page, `vane_drift_detected{feature="c",model="iris",version="v1"} 0`)
	assert.Contains(t, page, `vane_monitor_samples_total{model="iris",version="v1"} 2000`)
	pred := feature(t, vr, "prediction")
	assert.NotEmpty(t, pred.Tests, "predictions are monitored like features")
}

// ecdfDistance is max |F_ref - F_live| over the pooled values, computed the
// slow obvious way.
func ecdfDistance(ref, live []float64) float64 {
	cdf := func(xs []float64, x float64) float64 {
		n := 0
		for _, v := range xs {
			if v <= x {
				n++
			}
		}
		return float64(n) / float64(len(xs))
	}
	d := 0.0
	for _, x := range append(append([]float64{}, ref...), live...) {
		d = math.Max(d, math.Abs(cdf(ref, x)-cdf(live, x)))
	}
	return d
}

func driftReport(t *testing.T, admin string) monitor.Report {
	t.Helper()
	resp, err := http.Get(admin + "/drift")
	require.NoError(t, err)
	defer resp.Body.Close()
	var r monitor.Report
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	return r
}

func feature(t *testing.T, vr monitor.VersionReport, name string) monitor.FeatureReport {
	t.Helper()
	for _, f := range vr.Features {
		if f.Feature == name {
			return f
		}
	}
	t.Fatalf("feature %s not in the report", name)
	return monitor.FeatureReport{}
}

func testReport(t *testing.T, f monitor.FeatureReport, method string) monitor.TestReport {
	t.Helper()
	for _, tr := range f.Tests {
		if tr.Method == method {
			return tr
		}
	}
	t.Fatalf("feature %s has no %s test", f.Feature, method)
	return monitor.TestReport{}
}

// TestSamplingDropsAreCounted: bodies over max_body_bytes are proxied but
// not sampled, and the drop is counted; every request is answered.
func TestSamplingDropsAreCounted(t *testing.T) {
	be := backend(t, "v1")
	cfg := strings.Replace(twoVersions(be.URL, be.URL, 1, 0, ""), "    versions:", "    monitor:\n      max_body_bytes: 10\n    versions:", 1)
	v := startVane(t, cfg)
	for range 20 {
		resp, _ := post(t, v.url+"/v1/models/iris:predict", `{"instances":[[1,2,3,4]]}`, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Contains(t, metricsText(t, v.admin), `vane_monitor_samples_dropped_total{model="iris",reason="body_too_large"} 20`)
}
