package monitor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

func TestDecodeErrorsCounted(t *testing.T) {
	f := newFixture(t, Options{})
	require.NoError(t, f.m.Configure(config(model("iris", configs.Monitor{Window: 10}, "v1"))))
	f.feed("iris", "v1", `not json`, `{"predictions":[1]}`)
	f.feed("iris", "v1", `{"instances":[[1,2]]}`, `{"predictions":[1]}`)

	vr := f.version(t, "iris", "v1")
	assert.Equal(t, uint64(2), vr.Samples)
	assert.Equal(t, uint64(1), vr.DecodeErrors)
	assert.Equal(t, uint64(1), vr.Rows)
	got, ok := f.value(t, "vane_monitor_decode_errors_total", map[string]string{"model": "iris", "version": "v1"})
	require.True(t, ok)
	assert.Equal(t, 1.0, got)

	// Samples of a model or version not in the config are dropped.
	f.feed("nope", "v1", `{}`, `{}`)
	f.feed("iris", "v9", `{}`, `{}`)
	got, _ = f.value(t, "vane_monitor_samples_dropped_total", map[string]string{"model": "nope", "reason": "unknown_model"})
	assert.Equal(t, 1.0, got)
	got, _ = f.value(t, "vane_monitor_samples_dropped_total", map[string]string{"model": "iris", "reason": "unknown_version"})
	assert.Equal(t, 1.0, got)
}

func TestCategoricalChi2(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 100, Reference: configs.Reference{Warmup: 100}, AlertOn: []string{"chi2"}}
	require.NoError(t, f.m.Configure(config(model("shop", mon, "v1"))))
	// Colors in a fixed shuffled order: sorted runs would make the
	// warmup drift within itself, which the split-half check refuses.
	shuffle := rand.New(rand.NewPCG(5, 5))
	feedColors := func(counts map[string]int) {
		var colors []string
		for _, c := range []string{"red", "blue", "green", "purple"} {
			for range counts[c] {
				colors = append(colors, c)
			}
		}
		shuffle.Shuffle(len(colors), func(i, j int) { colors[i], colors[j] = colors[j], colors[i] })
		for _, c := range colors {
			f.feed("shop", "v1", fmt.Sprintf(`{"instances":[{"color":%q,"size":1.5}]}`, c), `{"predictions":["yes"]}`)
		}
	}
	ref := map[string]int{"red": 50, "blue": 30, "green": 20}
	live := map[string]int{"red": 20, "blue": 30, "green": 40, "purple": 10}
	feedColors(ref)
	feedColors(live)

	vr := f.version(t, "shop", "v1")
	require.Equal(t, 1, vr.WindowsClosed)
	color := featureOf(t, vr, "color")
	assert.Equal(t, "categorical", color.Kind)
	assert.Equal(t, 100, color.ReferenceCount)
	assert.Equal(t, 100, color.LastWindowCount)

	// Pearson's chi-square on the 2x4 table, by hand (dof 3: no Yates).
	cats := []string{"red", "blue", "green", "purple"}
	stat := 0.0
	for _, c := range cats {
		col := float64(ref[c] + live[c])
		for _, obs := range []int{ref[c], live[c]} {
			exp := col * 100 / 200
			stat += (float64(obs) - exp) * (float64(obs) - exp) / exp
		}
	}
	chi2 := testOf(t, color, "chi2")
	assert.InDelta(t, stat, chi2.Statistic, 1e-9)
	require.NotNil(t, chi2.PValue)
	assert.Less(t, *chi2.PValue, 1e-4)
	assert.True(t, chi2.Drifted)

	psi := 0.0
	for _, c := range cats {
		r, l := math.Max(float64(ref[c])/100, 1e-4), math.Max(float64(live[c])/100, 1e-4)
		psi += (l - r) * math.Log(l/r)
	}
	assert.InDelta(t, psi, testOf(t, color, "psi").Statistic, 1e-12)
	testOf(t, color, "js")
	for _, tr := range color.Tests {
		assert.NotEqual(t, "ks", tr.Method)
	}
	// The categorical prediction is tested as well (a single category: no evidence).
	pred := featureOf(t, vr, "prediction")
	assert.Equal(t, "categorical", pred.Kind)
	assert.False(t, testOf(t, pred, "chi2").Drifted)
	assert.Equal(t, "numeric", featureOf(t, vr, "size").Kind)
}

func TestHysteresis(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 100, Reference: configs.Reference{Warmup: 200}, Features: []string{"x"}, Consecutive: 2,
		Detector: configs.DetectorWindow}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	rng := rand.New(rand.NewPCG(7, 7))
	f.feedRows("m", "v1", normals(rng, 200, 1))

	steps := []struct {
		shift   float64
		drifted bool // this window
		alert   bool // after hysteresis
	}{
		{3, true, false}, {3, true, true}, {0, false, true}, {0, false, false},
		{3, true, false}, {0, false, false}, {3, true, false}, {0, false, false},
	}
	var since *time.Time
	for i, st := range steps {
		f.clock.Advance(time.Minute)
		f.feedRows("m", "v1", normals(rng, 100, 1, st.shift))
		x := featureOf(t, f.version(t, "m", "v1"), "x")
		assert.Equal(t, st.drifted, testOf(t, x, "ks").Drifted, "window %d", i+1)
		assert.Equal(t, st.alert, x.Drifted, "window %d", i+1)
		detected, _ := f.value(t, "vane_drift_detected", map[string]string{"model": "m", "version": "v1", "feature": "x"})
		assert.Equal(t, st.alert, detected == 1, "window %d", i+1)
		if i == 1 {
			require.NotNil(t, x.AlertSince)
			since = x.AlertSince
			assert.Equal(t, f.clock.Now(), *since)
		}
		if i == 2 {
			require.NotNil(t, x.AlertSince)
			assert.Equal(t, *since, *x.AlertSince, "still the same alert")
		}
	}
	log := f.logText()
	assert.Equal(t, 1, strings.Count(log, "drift alert raised"))
	assert.Equal(t, 1, strings.Count(log, "drift alert cleared"))
}

func TestMaxAgeClosesWithMinWindow(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 100, MinWindow: 10, MaxAge: time.Minute,
		Reference: configs.Reference{Warmup: 50}, Features: []string{"x"}}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	rng := rand.New(rand.NewPCG(1, 1))
	f.feedRows("m", "v1", normals(rng, 50, 1))

	f.feedRows("m", "v1", normals(rng, 5, 1))
	f.clock.Advance(2 * time.Minute)
	f.m.closeAged()
	assert.Equal(t, 0, f.version(t, "m", "v1").WindowsClosed, "5 rows are fewer than min_window")

	f.feedRows("m", "v1", normals(rng, 5, 1))
	vr := f.version(t, "m", "v1")
	require.Equal(t, 0, vr.WindowsClosed, "each sample checks the age before it is added")
	require.Equal(t, 10, vr.CurrentWindowRows)
	f.m.closeAged() // the ticker's path: idle, old enough, big enough
	vr = f.version(t, "m", "v1")
	assert.Equal(t, 1, vr.WindowsClosed)
	assert.Equal(t, 10, vr.LastWindowRows)
	assert.Equal(t, 0, vr.CurrentWindowRows)
	require.NotNil(t, vr.LastWindowClosedAt)
	assert.Equal(t, f.clock.Now(), *vr.LastWindowClosedAt)
	assert.NotEmpty(t, featureOf(t, vr, "x").Tests)

	// A sample arriving after max_age closes the old window first.
	f.feedRows("m", "v1", normals(rng, 12, 1))
	f.clock.Advance(61 * time.Second)
	f.feedRows("m", "v1", normals(rng, 1, 1))
	vr = f.version(t, "m", "v1")
	assert.Equal(t, 2, vr.WindowsClosed)
	assert.Equal(t, 12, vr.LastWindowRows)
	assert.Equal(t, 1, vr.CurrentWindowRows)

	// Not yet old: nothing closes.
	f.feedRows("m", "v1", normals(rng, 20, 1))
	f.clock.Advance(30 * time.Second)
	f.m.closeAged()
	assert.Equal(t, 2, f.version(t, "m", "v1").WindowsClosed)
}

func TestFeatureCap(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 10, Reference: configs.Reference{Warmup: 5}, Features: []string{"a", "b"}}
	require.NoError(t, f.m.Configure(config(model("wide", mon, "v1"))))
	row := make([]float64, 200)
	for range 3 {
		f.feedRows("wide", "v1", [][]float64{row})
	}
	long := strings.Repeat("k", maxFeatureName+1)
	f.feed("wide", "v1", fmt.Sprintf(`{"instances":[{%q:1}]}`, long), `{"predictions":[0]}`)

	vr := f.version(t, "wide", "v1")
	require.Len(t, vr.Features, MaxFeatures)
	names := []string{}
	for _, fr := range vr.Features {
		names = append(names, fr.Feature)
	}
	assert.Equal(t, []string{"a", "b", "prediction", "f2"}, names[:4], "configured first, predictions before other inputs")
	assert.Equal(t, fmt.Sprintf("f%d", MaxFeatures-2), names[MaxFeatures-1])
	ignored, ok := f.value(t, "vane_monitor_features_ignored_total", map[string]string{"model": "wide", "version": "v1"})
	require.True(t, ok)
	assert.Equal(t, float64(3*(200-(MaxFeatures-1))+1), ignored)
}

func TestKindMismatchSkipped(t *testing.T) {
	f := newFixture(t, Options{})
	require.NoError(t, f.m.Configure(config(model("m", configs.Monitor{Window: 10}, "v1"))))
	f.feed("m", "v1", `{"instances":[{"x":1}]}`, `{"predictions":[1]}`)
	f.feed("m", "v1", `{"instances":[{"x":"one"}]}`, `{"predictions":[1]}`)
	assert.Equal(t, "numeric", featureOf(t, f.version(t, "m", "v1"), "x").Kind)
	got, ok := f.value(t, "vane_monitor_values_skipped_total", map[string]string{"model": "m", "version": "v1", "reason": "kind_mismatch"})
	require.True(t, ok)
	assert.Equal(t, 1.0, got)
}

func TestCategoryCap(t *testing.T) {
	counts := map[string]float64{}
	for i := range 1000 {
		counts = addCategory(counts, fmt.Sprint("c", i))
	}
	assert.Len(t, counts, maxCategories)
	assert.Equal(t, float64(1000-(maxCategories-1)), counts[OtherCategory])
}
