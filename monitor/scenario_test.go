package monitor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// ecdfD is the two-sample KS statistic by brute force: the largest gap
// between the two empirical CDFs, evaluated at every pooled value.
func ecdfD(ref, live []float64) float64 {
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
	for _, pooled := range [][]float64{ref, live} {
		for _, x := range pooled {
			d = math.Max(d, math.Abs(cdf(ref, x)-cdf(live, x)))
		}
	}
	return d
}

// TestProductScenario is the product's drift scenario end to end through
// Offer, the queue and a worker: kserve-v1, features a..d, warmup 1000,
// window 500; after 1000 reference rows, a shifts by 3 sd and b by 0.01.
func TestProductScenario(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 500, Reference: configs.Reference{Warmup: 1000},
		Features: []string{"a", "b", "c", "d"}}
	require.NoError(t, f.m.Configure(config(model("iris", mon, "v1"))))
	f.run(t)

	rng := rand.New(rand.NewPCG(2026, 11))
	rows := append(normals(rng, 1000, 4), normals(rng, 1000, 4, 3, 0.01)...)
	preds := make([]float64, len(rows))
	for i, r := range rows {
		preds[i] = math.Round(1 / (1 + math.Exp(-r[0]-r[1])))
		s := f.m.AcquireSample()
		s.Model, s.Version, s.RequestID, s.Time = "iris", "v1", strconv.Itoa(i), time.Now()
		s.Input.Status, s.Input.Path = 200, "/v1/models/iris:predict"
		s.AppendReq([]byte(v1Request(r)))
		s.AppendResp([]byte(fmt.Sprintf(`{"predictions":[%g]}`, preds[i])))
		for !f.m.Offer(s) { // the queue holds 4096: never full here
			t.Fatal("offer dropped")
		}
	}
	require.Eventually(t, func() bool { return f.version(t, "iris", "v1").WindowsClosed == 2 },
		10*time.Second, 5*time.Millisecond)

	vr := f.version(t, "iris", "v1")
	assert.Equal(t, 1000, vr.ReferenceSize)
	assert.Equal(t, 500, vr.WindowSize)
	assert.Equal(t, uint64(2000), vr.Samples)
	assert.Equal(t, uint64(2000), vr.Rows)
	assert.Zero(t, vr.DecodeErrors)
	assert.Equal(t, "warmup", vr.ReferenceSource)

	// The last window is rows 1501..2000, the reference rows 1..1000.
	column := func(from, to, j int, xs [][]float64) []float64 {
		out := make([]float64, 0, to-from)
		for _, r := range xs[from:to] {
			out = append(out, r[j])
		}
		return out
	}
	for j, name := range []string{"a", "b", "c", "d"} {
		want := ecdfD(column(0, 1000, j, rows), column(1500, 2000, j, rows))
		ks := testOf(t, featureOf(t, vr, name), "ks")
		assert.InDelta(t, want, ks.Statistic, 1e-12, name)
	}
	predCol := [][]float64{}
	for _, p := range preds {
		predCol = append(predCol, []float64{p})
	}
	pf := featureOf(t, vr, "prediction")
	assert.Equal(t, "numeric", pf.Kind)
	assert.InDelta(t, ecdfD(column(0, 1000, 0, predCol), column(1500, 2000, 0, predCol)),
		testOf(t, pf, "ks").Statistic, 1e-12)

	a := featureOf(t, vr, "a")
	assert.True(t, a.Drifted, "a drifts by 3 sd")
	require.NotNil(t, a.AlertSince)
	ks := testOf(t, a, "ks")
	assert.True(t, ks.Drifted)
	require.NotNil(t, ks.PValue)
	require.NotNil(t, ks.PValueAdjusted)
	// Bonferroni over the five p-value tests (a, b, c, d, prediction).
	assert.InDelta(t, math.Min(1, *ks.PValue*5), *ks.PValueAdjusted, 1e-300)
	assert.Equal(t, 0.01, ks.Threshold)
	psi := testOf(t, a, "psi")
	assert.Nil(t, psi.PValue)
	assert.Equal(t, 0.2, psi.Threshold)
	assert.True(t, psi.Drifted)
	for _, name := range []string{"c", "d"} {
		fr := featureOf(t, vr, name)
		assert.False(t, fr.Drifted, name)
		assert.False(t, testOf(t, fr, "ks").Drifted, name)
	}

	for feature, want := range map[string]float64{"a": 1, "c": 0, "d": 0} {
		got, ok := f.value(t, "vane_drift_detected", map[string]string{"model": "iris", "version": "v1", "feature": feature})
		require.True(t, ok, feature)
		assert.Equal(t, want, got, feature)
	}
	score, ok := f.value(t, "vane_drift_score", map[string]string{"model": "iris", "version": "v1", "feature": "a", "method": "ks"})
	require.True(t, ok)
	assert.Equal(t, ks.Statistic, score)
	for name, want := range map[string]float64{"vane_monitor_samples_total": 2000,
		"vane_monitor_rows_total": 2000, "vane_monitor_windows_closed_total": 2} {
		got, ok := f.value(t, name, map[string]string{"model": "iris", "version": "v1"})
		require.True(t, ok, name)
		assert.Equal(t, want, got, name)
	}
	// a's alert rose with the first drifted window (the cusum detector:
	// a 3 sd shift is far past the threshold at once), and only then; the
	// prediction, a function of a, drifts with it (within two windows: a
	// 1000-row reference against windows of 500 calibrates a high
	// threshold); b (0.01 sd), c and d never alert.
	raised := map[string]int{}
	for _, line := range strings.Split(f.logText(), "\n") {
		if strings.Contains(line, "drift alert raised") {
			feature := strings.Fields(line[strings.Index(line, "feature="):])[0]
			raised[feature]++
			if strings.Contains(line, "feature=a ") {
				assert.Contains(t, line, "window=1", line)
			}
		}
	}
	assert.Equal(t, 1, raised["feature=a"])
	assert.Equal(t, 1, raised["feature=prediction"])
	assert.Zero(t, raised["feature=b"]+raised["feature=c"]+raised["feature=d"])
	assert.NotContains(t, f.logText(), "instances", "no payload in the log")
}

// BenchmarkPipeline is one worker's cost per sample: decode a kserve-v1
// exchange (one row, four features and a prediction), update the window,
// and, every 500 samples, close it (ks, psi, js, wasserstein per feature
// against a 1000-row reference, the correction and the hysteresis).
func BenchmarkPipeline(b *testing.B) {
	f := newFixture(b, Options{})
	mon := configs.Monitor{Window: 500, Reference: configs.Reference{Warmup: 1000},
		Features: []string{"a", "b", "c", "d"}}
	if err := f.m.Configure(config(model("iris", mon, "v1"))); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	reqs := make([][]byte, 4096)
	for i := range reqs {
		reqs[i] = []byte(v1Request(normals(rng, 1, 4)[0]))
	}
	resp := []byte(`{"predictions":[1]}`)
	w := &worker{}
	feed := func(i int) {
		s := f.m.AcquireSample()
		s.Model, s.Version = "iris", "v1"
		s.Input.Status = 200
		s.AppendReq(reqs[i%len(reqs)])
		s.AppendResp(resp)
		f.m.process(w, s)
	}
	for i := range 1000 { // the reference
		feed(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		feed(i)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}
