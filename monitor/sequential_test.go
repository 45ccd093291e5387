package monitor

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// A warmup whose second half has moved (drift that began during it) is
// refused, said so in the log and the report, and learned again.
func TestWarmupRefusedWhenItDrifts(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 500, Reference: configs.Reference{Warmup: 2000}, Features: []string{"x"}}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	rng := rand.New(rand.NewPCG(8, 8))
	f.feedRows("m", "v1", normals(rng, 400, 1))
	f.feedRows("m", "v1", normals(rng, 1600, 1, 0.5)) // drift from warmup row 400
	vr := f.version(t, "m", "v1")
	assert.False(t, vr.ReferenceReady)
	assert.Equal(t, 1, vr.ReferenceRefusals)
	assert.Contains(t, vr.ReferenceRefused, `feature "x": mean differs between the warmup's halves`)
	assert.Contains(t, f.logText(), "drift reference refused")

	// The drift persists: the next warmup is stable and becomes the
	// reference (the operator was told).
	f.feedRows("m", "v1", normals(rng, 2000, 1, 0.5))
	vr = f.version(t, "m", "v1")
	assert.True(t, vr.ReferenceReady)
	assert.Equal(t, 2000, vr.ReferenceSize)
	assert.Equal(t, 1, vr.ReferenceRefusals)
}

// A stable warmup is not refused, including a categorical feature and a
// 0/1 one, whatever their order within the halves.
func TestWarmupStableAccepted(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 100, Reference: configs.Reference{Warmup: 3000}, Features: []string{"x", "y"}}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	rng := rand.New(rand.NewPCG(9, 9))
	f.feedRows("m", "v1", normals(rng, 3000, 2))
	vr := f.version(t, "m", "v1")
	assert.True(t, vr.ReferenceReady)
	assert.Zero(t, vr.ReferenceRefusals)
}

// A 10,000-row warmup keeps ReferenceSample values but the exact mean and
// variance of all of them, saves them, and a restart loads them.
func TestBigReferenceSampleAndMoments(t *testing.T) {
	stateDir := t.TempDir()
	mon := configs.Monitor{Window: 500, Reference: configs.Reference{Warmup: 10000}, Features: []string{"x"}}
	cfg := config(model("m", mon, "v1"))
	cfg.StateDir = stateDir
	f := newFixture(t, Options{})
	require.NoError(t, f.m.Configure(cfg))
	rng := rand.New(rand.NewPCG(10, 10))
	rows := normals(rng, 10000, 1)
	f.feedRows("m", "v1", rows)
	sum := 0.0
	for _, r := range rows {
		sum += r[0]
	}
	v := f.m.snap.Load().models["m"].versions["v1"]
	fr := v.ref.features["x"]
	assert.Len(t, fr.values, ReferenceSample)
	assert.Equal(t, 10000, fr.n)
	assertClose(t, sum/10000, fr.mom.Mean, 1e-12)
	assert.Nil(t, fr.levels, "continuous")
	pr := v.ref.features["prediction"]
	assert.Equal(t, []float64{0}, pr.levels, "the constant prediction is discrete")

	g := newFixture(t, Options{})
	require.NoError(t, g.m.Configure(cfg))
	assert.Equal(t, 10000, featureRefOf(g, "x").n)
	assert.Equal(t, fr.mom, featureRefOf(g, "x").mom)
	assert.Equal(t, fr.values, featureRefOf(g, "x").values)
	_, _, err := readProfile(filepath.Join(stateDir, "references", "m", "v1.json"), MaxProfileValues)
	require.NoError(t, err)
}

func featureRefOf(f *fixture, name string) *featureRef {
	return f.m.snap.Load().models["m"].versions["v1"].ref.features[name]
}

func assertClose(t *testing.T, want, got, tol float64) {
	t.Helper()
	assert.InDelta(t, want, got, tol)
}

// A shift too small for any single window's test accumulates in the
// CUSUM until it alerts; without it, the same windows stay quiet.
func TestCUSUMAccumulatesSmallShift(t *testing.T) {
	run := func(shift float64, detector string) (raisedAt int, minKSP float64, vr VersionReport) {
		f := newFixture(t, Options{})
		mon := configs.Monitor{Window: 1000, Reference: configs.Reference{Warmup: 10000}, Features: []string{"x"},
			Detector: detector}
		require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
		rng := rand.New(rand.NewPCG(11, 11))
		f.feedRows("m", "v1", normals(rng, 10000, 1))
		minKSP = 1
		for w := 1; w <= 6; w++ {
			f.feedRows("m", "v1", normals(rng, 1000, 1, shift))
			vr = f.version(t, "m", "v1")
			x := featureOf(t, vr, "x")
			minKSP = min(minKSP, *testOf(t, x, "ks").PValueAdjusted)
			if x.Drifted && raisedAt == 0 {
				raisedAt = w
			}
		}
		return raisedAt, minKSP, vr
	}
	at, _, vr := run(0.1, "")
	assert.NotZero(t, at, "the cusum alerts")
	wat, ksP, _ := run(0.1, configs.DetectorWindow)
	assert.Zero(t, wat, "the same windows judged one by one do not")
	assert.Less(t, ksP, 0.05, "though some window was suspicious")
	x := featureOf(t, vr, "x")
	require.NotNil(t, x.Sequential)
	assert.Greater(t, x.Sequential.Score, x.Sequential.Threshold)
	assert.Less(t, x.Sequential.PValue, vr.FalseAlarmRate)
	names := []string{}
	for _, s := range x.Sequential.Statistics {
		names = append(names, s.Name)
	}
	assert.Equal(t, []string{"mean", "scale"}, names)
	pred := featureOf(t, vr, "prediction")
	require.NotNil(t, pred.Sequential)
	assert.Equal(t, "mean", pred.Sequential.Statistics[0].Name)
	assert.Equal(t, "chi2", pred.Sequential.Statistics[1].Name, "a discrete numeric gets a chi-square")

	at, _, vr = run(0, "")
	assert.Zero(t, at, "no drift, no alert")
	assert.Equal(t, "cusum", vr.Detector)
}

// vane_drift_p_value carries the corrected p-values behind the verdicts.
func TestPValueMetric(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 200, Reference: configs.Reference{Warmup: 1000}, Features: []string{"x"}}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	rng := rand.New(rand.NewPCG(12, 12))
	f.feedRows("m", "v1", normals(rng, 1000, 1))
	f.feedRows("m", "v1", normals(rng, 200, 1, 1))
	x := featureOf(t, f.version(t, "m", "v1"), "x")
	labels := map[string]string{"model": "m", "version": "v1", "feature": "x", "method": "ks"}
	got, ok := f.value(t, "vane_drift_p_value", labels)
	require.True(t, ok)
	assert.Equal(t, *testOf(t, x, "ks").PValueAdjusted, got)
	labels["method"] = "cusum"
	got, ok = f.value(t, "vane_drift_p_value", labels)
	require.True(t, ok)
	assert.Equal(t, x.Sequential.PValue, got)
	assert.True(t, x.Drifted)
}

// A restart keeps the learned reference and a raised alert: the new
// process loads both from state_dir, shows the alert at once and does not
// learn a new reference from the drifted traffic.
func TestRestartKeepsAlert(t *testing.T) {
	stateDir := t.TempDir()
	mon := configs.Monitor{Window: 500, Reference: configs.Reference{Warmup: 2000}, Features: []string{"x"}}
	cfg := config(model("m", mon, "v1"))
	cfg.StateDir = stateDir
	rng := rand.New(rand.NewPCG(13, 13))
	f := newFixture(t, Options{})
	require.NoError(t, f.m.Configure(cfg))
	f.feedRows("m", "v1", normals(rng, 2000, 1))
	f.feedRows("m", "v1", normals(rng, 1000, 1, 0.5))
	x := featureOf(t, f.version(t, "m", "v1"), "x")
	require.True(t, x.Drifted)
	since := x.AlertSince

	g := newFixture(t, Options{})
	require.NoError(t, g.m.Configure(cfg))
	vr := g.version(t, "m", "v1")
	assert.True(t, vr.ReferenceReady, "no new warmup")
	gx := featureOf(t, vr, "x")
	assert.True(t, gx.Drifted, "the alert survives the restart")
	assert.Equal(t, since, gx.AlertSince)
	require.NotNil(t, gx.Sequential)
	assert.Equal(t, x.Sequential.Score, gx.Sequential.Score)
	got, ok := g.value(t, "vane_drift_detected", map[string]string{"model": "m", "version": "v1", "feature": "x"})
	require.True(t, ok)
	assert.Equal(t, 1.0, got)

	// The drift goes on: the alert stays raised.
	g.feedRows("m", "v1", normals(rng, 500, 1, 0.5))
	assert.True(t, featureOf(t, g.version(t, "m", "v1"), "x").Drifted)

	// A state file of another reference is not taken up.
	require.NoError(t, os.WriteFile(filepath.Join(stateDir, "references", "m", "v1.alerts.json"),
		[]byte(`{"format":"vane-alerts/v1","reference_created_at":"2001-01-01T00:00:00Z","features":{"x":{"alert":true,"sums":{"mean":[99,0]}}}}`), 0o644))
	h := newFixture(t, Options{})
	require.NoError(t, h.m.Configure(cfg))
	assert.False(t, featureOf(t, h.version(t, "m", "v1"), "x").Drifted)
	assert.Contains(t, h.logText(), "ignoring saved drift alert state")
}

// A feature that collapses to one value (a stuck sensor, a default
// filled in) keeps its mean but loses its spread: the scale statistic
// alerts.
func TestCUSUMScaleCollapse(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 200, Reference: configs.Reference{Warmup: 2000}, Features: []string{"x"}}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	rng := rand.New(rand.NewPCG(16, 16))
	f.feedRows("m", "v1", normals(rng, 2000, 1))
	stuck := make([][]float64, 200)
	for i := range stuck {
		stuck[i] = []float64{0}
	}
	f.feedRows("m", "v1", stuck)
	x := featureOf(t, f.version(t, "m", "v1"), "x")
	assert.True(t, x.Drifted)
	require.NotNil(t, x.Sequential)
	assert.Equal(t, -float64(zCap), x.Sequential.Statistics[1].Z)
}

// Two workers feeding one version: closes are computed outside the lock,
// by whichever worker gets there, in order, none lost.
func TestConcurrentCloses(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 100, Reference: configs.Reference{Warmup: 200}, Features: []string{"x", "y"}}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	rng := rand.New(rand.NewPCG(17, 17))
	f.feedRows("m", "v1", normals(rng, 200, 2))
	rows := [2][][]float64{normals(rng, 3000, 2), normals(rng, 3000, 2, 2)}
	done := make(chan struct{})
	for i := range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			w := &worker{}
			for _, r := range rows[i] {
				s := f.m.AcquireSample()
				s.Model, s.Version = "m", "v1"
				s.Input.Status = 200
				s.AppendReq([]byte(v1Request(r)))
				s.AppendResp([]byte(`{"predictions":[0]}`))
				f.m.process(w, s)
			}
		}()
	}
	<-done
	<-done
	v := f.m.snap.Load().models["m"].versions["v1"]
	v.finish(nil, nil) // a window left by a worker that was leaving
	vr := f.version(t, "m", "v1")
	assert.Equal(t, 60, vr.WindowsClosed)
	got, _ := f.value(t, "vane_monitor_windows_closed_total", map[string]string{"model": "m", "version": "v1"})
	assert.Equal(t, 60.0, got)
	assert.True(t, featureOf(t, vr, "x").Drifted, "half the rows moved by 2 sd")
}
