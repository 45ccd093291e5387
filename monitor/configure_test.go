package monitor

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

func TestConfigureKeepsAndResets(t *testing.T) {
	f := newFixture(t, Options{})
	base := configs.Monitor{Window: 50, Reference: configs.Reference{Warmup: 100}, Features: []string{"x"}, Consecutive: 1}
	apply := func(mon configs.Monitor, versions ...string) {
		t.Helper()
		require.NoError(t, f.m.Configure(config(model("m", mon, versions...))))
	}
	apply(base, "v1", "v2")
	rng := rand.New(rand.NewPCG(8, 8))
	f.feedRows("m", "v1", normals(rng, 100, 1))
	f.feedRows("m", "v2", normals(rng, 100, 1))
	f.feedRows("m", "v1", normals(rng, 50, 1, 3))
	f.feedRows("m", "v1", normals(rng, 10, 1))
	v1 := f.version(t, "m", "v1")
	require.True(t, featureOf(t, v1, "x").Drifted)
	require.Equal(t, 1, v1.WindowsClosed)
	require.Equal(t, 10, v1.CurrentWindowRows)
	state := func() *versionState { return f.m.snap.Load().models["m"].versions["v1"] }
	kept := state()

	t.Run("thresholds and bins keep everything", func(t *testing.T) {
		mon := base
		mon.Bins = 5
		mon.Thresholds.PSI = 0.5
		mon.Correction = configs.CorrectionFDR
		apply(mon, "v1", "v2")
		assert.Same(t, kept, state())
		v1 := f.version(t, "m", "v1")
		assert.Equal(t, 1, v1.WindowsClosed)
		assert.Equal(t, 10, v1.CurrentWindowRows)
		assert.True(t, v1.ReferenceReady)
		assert.True(t, featureOf(t, v1, "x").Drifted)
		assert.Len(t, state().ref.features["x"].edges, 4, "edges re-frozen for 5 bins")
	})
	t.Run("window settings restart the window only", func(t *testing.T) {
		mon := base
		mon.Window = 60
		apply(mon, "v1", "v2")
		assert.Same(t, kept, state())
		v1 := f.version(t, "m", "v1")
		assert.Equal(t, 0, v1.CurrentWindowRows)
		assert.Equal(t, 1, v1.WindowsClosed)
		assert.Equal(t, 60, v1.WindowSize)
		assert.True(t, v1.ReferenceReady)
		assert.True(t, featureOf(t, v1, "x").Drifted)
	})
	t.Run("features reset the version", func(t *testing.T) {
		mon := base
		mon.Features = []string{"x", "y"}
		apply(mon, "v1", "v2")
		assert.NotSame(t, kept, state())
		assert.True(t, kept.retired)
		v1 := f.version(t, "m", "v1")
		assert.False(t, v1.ReferenceReady)
		assert.Equal(t, 0, v1.WindowsClosed)
		assert.Empty(t, v1.Features)
		assert.Contains(t, f.logText(), "drift monitor state reset")
		assert.Contains(t, f.logText(), "drift alert cleared")
		_, ok := f.value(t, "vane_drift_detected", map[string]string{"model": "m", "version": "v1", "feature": "x"})
		assert.False(t, ok, "the reset version's drift series are gone")
		// A worker still holding the old state changes nothing.
		ev, job := kept.apply(nil, f.clock.Now(), nil)
		assert.Nil(t, ev)
		assert.Nil(t, job)
	})
	t.Run("reference source resets the version", func(t *testing.T) {
		v2 := f.m.snap.Load().models["m"].versions["v2"]
		mon := base
		mon.Features = []string{"x", "y"}
		mon.Reference = configs.Reference{Warmup: 200}
		apply(mon, "v1", "v2")
		assert.NotSame(t, v2, f.m.snap.Load().models["m"].versions["v2"])
	})
	t.Run("a removed version is forgotten", func(t *testing.T) {
		_, ok := f.value(t, "vane_monitor_samples_total", map[string]string{"model": "m", "version": "v2"})
		require.True(t, ok)
		mon := base
		mon.Features = []string{"x", "y"}
		mon.Reference = configs.Reference{Warmup: 200}
		apply(mon, "v1")
		require.Len(t, f.m.Report().Models[0].Versions, 1)
		_, ok = f.value(t, "vane_monitor_samples_total", map[string]string{"model": "m", "version": "v2"})
		assert.False(t, ok)
	})
	t.Run("nil config", func(t *testing.T) {
		assert.Error(t, f.m.Configure(nil))
	})
}

func TestConfigureFileReferenceReloaded(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/ref.json"
	writeProfile(t, path, map[string]any{"format": ProfileFormat,
		"features": map[string]any{"x": map[string]any{"kind": "numeric", "values": []float64{1, 2, 3}}}})
	f := newFixture(t, Options{})
	cfg := config(model("m", configs.Monitor{Window: 10, Reference: configs.Reference{File: path}}, "v1"))
	require.NoError(t, f.m.Configure(cfg))
	first := f.m.snap.Load().models["m"].versions["v1"]

	require.NoError(t, f.m.Configure(cfg))
	assert.Same(t, first, f.m.snap.Load().models["m"].versions["v1"], "same file content: state kept")

	writeProfile(t, path, map[string]any{"format": ProfileFormat,
		"features": map[string]any{"x": map[string]any{"kind": "numeric", "values": []float64{1, 2, 3, 4}}}})
	require.NoError(t, f.m.Configure(cfg))
	assert.NotSame(t, first, f.m.snap.Load().models["m"].versions["v1"], "new content: a new reference")
	assert.Equal(t, 4, f.version(t, "m", "v1").ReferenceSize)
}

// TestConfigureParsedConfig applies a config as vane loads it, defaults
// filled by configs.Parse.
func TestConfigureParsedConfig(t *testing.T) {
	cfg, err := configs.Parse([]byte(`
models:
  - name: iris
    match: {path_prefix: /v1/models/iris}
    protocol: kserve-v1
    versions:
      - name: v1
        endpoints: ["http://127.0.0.1:8501"]
    monitor:
      window: 100
      reference: {warmup: 100}
      features: [a, b]
`))
	require.NoError(t, err)
	f := newFixture(t, Options{})
	require.NoError(t, f.m.Configure(cfg))
	set := f.m.snap.Load().models["iris"].set
	assert.Equal(t, config(model("iris", configs.Monitor{Window: 100}, "v1")).Models[0].Monitor.Thresholds,
		configs.Thresholds{KS: set.thresholds[methodKS], PSI: set.thresholds[methodPSI], JS: set.thresholds[methodJS],
			Wasserstein: set.thresholds[methodWasserstein], Chi2: set.thresholds[methodChi2]},
		"parsed defaults equal those of configs.ApplyDefaults")
	assert.Equal(t, 10, set.bins)
	assert.Equal(t, 2, set.consecutive)
	assert.Equal(t, configs.CorrectionBonferroni, set.correction)
	assert.True(t, set.alertOn[methodKS] && set.alertOn[methodChi2] && !set.alertOn[methodPSI])
	assert.Equal(t, 100, set.minWindow)
	rng := rand.New(rand.NewPCG(13, 13))
	f.feedRows("iris", "v1", normals(rng, 200, 2))
	vr := f.version(t, "iris", "v1")
	assert.Equal(t, 1, vr.WindowsClosed)
	assert.Len(t, featureOf(t, vr, "a").Tests, 4)
}
