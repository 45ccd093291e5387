package monitor

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/monitor/stats"
)

// Each closed window adds its values per reference bin to
// vane_monitor_bin_total (and running totals to the cumulative counter);
// the reference's values per bin are gauges. The counts are exactly the
// window's, binned by the reference's frozen edges.
func TestFleetBinCounts(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 300, Reference: configs.Reference{Warmup: 1000}, Features: []string{"x"}}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	rng := rand.New(rand.NewPCG(14, 14))
	f.feedRows("m", "v1", normals(rng, 1000, 1))
	var windows [][]float64
	for range 2 {
		w := normals(rng, 300, 1, 0.3)
		windows = append(windows, w...)
		f.feedRows("m", "v1", w)
	}
	fr := featureRefOf(f, "x")
	want := make([]float64, len(fr.edges)+1)
	for _, r := range windows {
		want[stats.BinIndex(fr.edges, r[0])]++
	}
	labels := func(bin int) map[string]string {
		return map[string]string{"model": "m", "version": "v1", "feature": "x", "bin": strconv.Itoa(bin)}
	}
	cum, refTotal := 0.0, 0.0
	for i, w := range want {
		got, ok := f.value(t, "vane_monitor_bin_total", labels(i))
		require.True(t, ok, "bin %d", i)
		assert.Equal(t, w, got, "bin %d", i)
		cum += w
		got, _ = f.value(t, "vane_monitor_bin_cumulative_total", labels(i))
		assert.Equal(t, cum, got, "cumulative bin %d", i)
		ref, ok := f.value(t, "vane_monitor_reference_bin_values", labels(i))
		require.True(t, ok)
		assert.InDelta(t, fr.props[i]*1000, ref, 1e-9)
		refTotal += ref
	}
	assert.Equal(t, 600.0, cum)
	assert.InDelta(t, 1000, refTotal, 1e-9)
	_, ok := f.value(t, "vane_monitor_bin_total", labels(len(want)))
	assert.False(t, ok, "no bin beyond the reference's")
}

// Categorical bins are reference category indexes, never payload values;
// categories the reference lacks count as "other".
func TestFleetBinCategories(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 40, Reference: configs.Reference{Warmup: 40}}
	require.NoError(t, f.m.Configure(config(model("shop", mon, "v1"))))
	feed := func(colors ...string) {
		for _, c := range colors {
			f.feed("shop", "v1", fmt.Sprintf(`{"instances":[{"color":%q}]}`, c), `{"predictions":[1]}`)
		}
	}
	for range 20 {
		feed("red", "blue")
	}
	for range 10 {
		feed("red", "red", "blue", "pink")
	}
	for bin, want := range map[string]float64{"0": 10, "1": 20, "other": 10} { // blue, red, pink
		got, ok := f.value(t, "vane_monitor_bin_total", map[string]string{"model": "shop", "version": "v1", "feature": "color", "bin": bin})
		require.True(t, ok, bin)
		assert.Equal(t, want, got, bin)
	}
}

func TestHistogram(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 300, Reference: configs.Reference{Warmup: 1000}, Features: []string{"x"}}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	rng := rand.New(rand.NewPCG(15, 15))
	f.feedRows("m", "v1", normals(rng, 1000, 1))
	f.feedRows("m", "v1", normals(rng, 50, 1))
	v := f.m.snap.Load().models["m"].versions["v1"]
	v.mu.Lock()
	defer v.mu.Unlock()
	fr := v.ref.features["x"]
	h := histogramOf(v.features[0], fr)
	require.NotNil(t, h)
	assert.Equal(t, fr.edges, h.Edges)
	assert.Len(t, h.Reference, len(h.Edges)+1)
	assert.InDelta(t, 1, sum(h.Reference), 1e-9)
	assert.InDelta(t, 1, sum(h.Window), 1e-9)
	assert.Equal(t, 50, h.WindowCount)
	assert.Nil(t, histogramOf(v.features[0], nil))
}
