package monitor

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/monitor/stats"
)

func writeProfile(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

func TestReferenceFromFile(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 3))
	refX := make([]float64, 800)
	for i := range refX {
		refX[i] = rng.NormFloat64()
	}
	writeProfile(t, filepath.Join(dir, "ref.json"), map[string]any{
		"format": "vane-reference/v1", "rows": 800,
		"features": map[string]any{
			"x":          map[string]any{"kind": "numeric", "values": refX},
			"prediction": map[string]any{"kind": "categorical", "counts": map[string]float64{"0": 800}},
		},
	})
	t.Chdir(dir) // a relative path resolves against the working directory

	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 100, Reference: configs.Reference{File: "ref.json"}, Features: []string{"x"}}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	vr := f.version(t, "m", "v1")
	assert.True(t, vr.ReferenceReady)
	assert.Equal(t, "file", vr.ReferenceSource)
	assert.Equal(t, "ref.json", vr.ReferenceOrigin)
	assert.Equal(t, 800, vr.ReferenceSize)

	live := normals(rng, 100, 1, 0.5)
	f.feedRows("m", "v1", live)
	vr = f.version(t, "m", "v1")
	require.Equal(t, 1, vr.WindowsClosed, "no warmup: windows start at once")
	sortedRef := slices.Clone(refX)
	sort.Float64s(sortedRef)
	liveX := []float64{}
	for _, r := range live {
		liveX = append(liveX, r[0])
	}
	sort.Float64s(liveX)
	wantD, wantP := stats.KS(sortedRef, liveX)
	ks := testOf(t, featureOf(t, vr, "x"), "ks")
	assert.Equal(t, wantD, ks.Statistic)
	assert.Equal(t, wantP, *ks.PValue)
	// The file said prediction is categorical; numeric predictions are skipped.
	assert.Equal(t, "categorical", featureOf(t, vr, "prediction").Kind)
	got, _ := f.value(t, "vane_monitor_values_skipped_total", map[string]string{"model": "m", "version": "v1", "reason": "kind_mismatch"})
	assert.Equal(t, 100.0, got)
}

func TestReferenceFileErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"missing.json":   "",
		"format.json":    `{"format":"other/v9","features":{"x":{"kind":"numeric","values":[1]}}}`,
		"unknown.json":   `{"format":"vane-reference/v1","features":{"x":{"kind":"numeric","value":[1]}}}`,
		"kind.json":      `{"format":"vane-reference/v1","features":{"x":{"kind":"ordinal","values":[1]}}}`,
		"empty.json":     `{"format":"vane-reference/v1","features":{"x":{"kind":"numeric","values":[]}}}`,
		"negative.json":  `{"format":"vane-reference/v1","features":{"c":{"kind":"categorical","counts":{"a":-1}}}}`,
		"nofeature.json": `{"format":"vane-reference/v1","features":{}}`,
		"garbage.json":   `{"format":`,
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if content != "" {
				require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
			}
			f := newFixture(t, Options{})
			mon := configs.Monitor{Window: 10, Reference: configs.Reference{File: path}}
			err := f.m.Configure(config(model("m", mon, "v1")))
			require.Error(t, err)
			assert.Contains(t, err.Error(), path)
			assert.Contains(t, err.Error(), "model m")
			assert.Empty(t, f.m.Report().Models, "a failed Configure changes nothing")
		})
	}
}

func TestReferenceFileReservoir(t *testing.T) {
	values := make([]float64, MaxProfileValues+50_000)
	for i := range values {
		values[i] = float64(i)
	}
	data, err := json.Marshal(map[string]any{"format": ProfileFormat,
		"features": map[string]any{"x": map[string]any{"kind": "numeric", "values": values}}})
	require.NoError(t, err)
	p1, err := parseProfile(data, MaxProfileValues)
	require.NoError(t, err)
	p2, err := parseProfile(data, MaxProfileValues)
	require.NoError(t, err)
	x := p1.Features["x"].Values
	assert.Len(t, x, MaxProfileValues)
	assert.True(t, sort.Float64sAreSorted(x))
	assert.Equal(t, x, p2.Features["x"].Values, "deterministic")
	assert.Greater(t, x[len(x)-1], float64(MaxProfileValues), "later values get in")
}

func TestReferencePersistedAndReloaded(t *testing.T) {
	stateDir := t.TempDir()
	mon := configs.Monitor{Window: 50, Reference: configs.Reference{Warmup: 100}, Features: []string{"x", "y"}}
	cfg := config(model("m", mon, "v1"))
	cfg.StateDir = stateDir
	rng := rand.New(rand.NewPCG(4, 4))
	ref := normals(rng, 100, 2)

	f := newFixture(t, Options{})
	require.NoError(t, f.m.Configure(cfg))
	f.feedRows("m", "v1", ref)
	path := filepath.Join(stateDir, "references", "m", "v1.json")
	p, _, err := readProfile(path, MaxProfileValues)
	require.NoError(t, err, "saved once learned")
	assert.Equal(t, ProfileFormat, p.Format)
	assert.Equal(t, 100, p.Warmup)
	assert.Equal(t, "m", p.Model)
	assert.Len(t, p.Features["x"].Values, 100)
	live := normals(rng, 50, 2, 1)
	f.feedRows("m", "v1", live)
	before := featureOf(t, f.version(t, "m", "v1"), "x")

	// A new monitor (a restart) loads it: no warmup, the same comparison.
	g := newFixture(t, Options{})
	require.NoError(t, g.m.Configure(cfg))
	vr := g.version(t, "m", "v1")
	assert.True(t, vr.ReferenceReady)
	assert.Equal(t, 100, vr.ReferenceSize)
	assert.Contains(t, g.logText(), "drift reference loaded from state_dir")
	g.feedRows("m", "v1", live)
	after := featureOf(t, g.version(t, "m", "v1"), "x")
	assert.Equal(t, before.Tests, after.Tests)

	// Another warmup count does not fit the saved reference: learn anew.
	cfg2 := config(model("m", configs.Monitor{Window: 50, Reference: configs.Reference{Warmup: 200}, Features: []string{"x", "y"}}, "v1"))
	cfg2.StateDir = stateDir
	h := newFixture(t, Options{})
	require.NoError(t, h.m.Configure(cfg2))
	assert.False(t, h.version(t, "m", "v1").ReferenceReady)
	assert.Contains(t, h.logText(), "learned with warmup 100")
}

func TestReferencePersistedOnRunExit(t *testing.T) {
	stateDir := t.TempDir()
	blocked := filepath.Join(stateDir, "references")
	require.NoError(t, os.WriteFile(blocked, nil, 0o644)) // a file where the directory goes
	mon := configs.Monitor{Window: 50, Reference: configs.Reference{Warmup: 10}}
	cfg := config(model("m", mon, "v1"))
	cfg.StateDir = stateDir

	f := newFixture(t, Options{})
	require.NoError(t, f.m.Configure(cfg))
	f.feedRows("m", "v1", normals(rand.New(rand.NewPCG(5, 5)), 10, 2))
	assert.Contains(t, f.logText(), "saving drift reference failed")

	require.NoError(t, os.Remove(blocked))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { defer close(done); f.m.Run(ctx) }()
	<-done
	_, err := os.Stat(filepath.Join(blocked, "m", "v1.json"))
	require.NoError(t, err, "Run saves what could not be saved before")
}

func TestReferenceVersion(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 100, Reference: configs.Reference{Version: "v1"}, Features: []string{"x"}}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1", "v2"))))
	rng := rand.New(rand.NewPCG(6, 6))

	// Until v1 closes a window, v2's windows close untested.
	f.feedRows("m", "v2", normals(rng, 100, 1))
	v2 := f.version(t, "m", "v2")
	assert.Equal(t, 1, v2.WindowsClosed)
	assert.False(t, v2.ReferenceReady)
	assert.Equal(t, "v1", v2.ReferenceOrigin)
	assert.Empty(t, featureOf(t, v2, "x").Tests)

	v1Rows := normals(rng, 100, 1)
	f.feedRows("m", "v1", v1Rows)
	assert.Empty(t, featureOf(t, f.version(t, "m", "v1"), "x").Tests, "v1's first window has nothing before it")

	v2Rows := normals(rng, 100, 1, 2)
	f.feedRows("m", "v2", v2Rows)
	v2 = f.version(t, "m", "v2")
	assert.True(t, v2.ReferenceReady)
	assert.Equal(t, 100, v2.ReferenceSize)
	col := func(rows [][]float64) []float64 {
		out := []float64{}
		for _, r := range rows {
			out = append(out, r[0])
		}
		sort.Float64s(out)
		return out
	}
	wantD, _ := stats.KS(col(v1Rows), col(v2Rows))
	ks := testOf(t, featureOf(t, v2, "x"), "ks")
	assert.Equal(t, wantD, ks.Statistic)
	assert.True(t, ks.Drifted)

	// v1 itself is compared window over window.
	f.feedRows("m", "v1", normals(rng, 100, 1))
	assert.NotEmpty(t, featureOf(t, f.version(t, "m", "v1"), "x").Tests)
}

// withBins returns the reference itself when its bins are already frozen
// at that count, also when ties left fewer distinct edges (0/1 flags,
// integers); only another count re-bins it.
func TestWithBinsKeepsAReferenceBinnedAlike(t *testing.T) {
	flags := make([]float64, 100)
	for i := 50; i < 100; i++ {
		flags[i] = 1
	}
	spread := make([]float64, 100)
	for i := range spread {
		spread[i] = float64(i)
	}
	r := &refProfile{features: map[string]*featureRef{
		"flag": numericRef(flags, 10), "x": numericRef(spread, 10)}}
	require.Less(t, len(r.features["flag"].edges), 9, "ties leave fewer edges than bins-1")
	assert.Same(t, r, r.withBins(10))
	other := r.withBins(5)
	require.NotSame(t, r, other)
	assert.Len(t, other.features["x"].edges, 4)
	assert.Same(t, other, other.withBins(5))
}
