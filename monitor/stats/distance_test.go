package stats

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPSI(t *testing.T) {
	tests := []struct {
		name      string
		ref, live []float64
		want      float64
	}{
		{"drift.md vector", []float64{.25, .25, .25, .25}, []float64{.1, .2, .3, .4}, 0.22821740957339182},
		// Evidently's zero replacement: (0.2−1e-4)·ln(0.2/1e-4) dominates.
		{"empty reference bin", []float64{.5, .5, 0}, []float64{.4, .4, .2}, 1.5640491119253044},
		{"no drift", []float64{.2, .3, .5}, []float64{.2, .3, .5}, 0},
		{"both zero", []float64{.5, .5, 0}, []float64{.5, .5, 0}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assertRel(t, tc.want, PSI(tc.ref, tc.live), 1e-12)
			assertRel(t, tc.want, PSI(tc.live, tc.ref), 1e-12, "symmetric")
		})
	}
	assert.Panics(t, func() { PSI([]float64{1}, []float64{.5, .5}) })
}

func TestJS(t *testing.T) {
	tests := []struct {
		name      string
		ref, live []float64
		want      float64
	}{
		// scipy.spatial.distance.jensenshannon(ref, live, base=2)
		{"point mass vs uniform", []float64{1, 0}, []float64{.5, .5}, 0.5579230452841438},
		{"drift.md vector", []float64{.25, .25, .25, .25}, []float64{.1, .2, .3, .4}, 0.2005033225314282},
		{"disjoint", []float64{1, 0, 0}, []float64{0, 1, 0}, 1},
		{"counts are normalised", []float64{3, 1, 0, 4}, []float64{1, 1, 1, 1}, 0.4243071205827987},
		{"same", []float64{.2, .8}, []float64{2, 8}, 0},
		{"no mass", []float64{0, 0}, []float64{.5, .5}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := JS(tc.ref, tc.live)
			assert.InDelta(t, tc.want, got, 1e-12)
			assert.InDelta(t, got, JS(tc.live, tc.ref), 1e-15, "symmetric")
			assert.True(t, got >= 0 && got <= 1)
		})
	}
	assert.Panics(t, func() { JS([]float64{1}, []float64{.5, .5}) })
}

func TestWasserstein(t *testing.T) {
	tests := []struct {
		name      string
		ref, live []float64
		want      float64
	}{
		{"drift.md vector", []float64{0, 1, 2, 3}, []float64{1, 2, 3, 4}, 0.8944271909999159},
		// scipy.stats.wasserstein_distance(ref, live) / max(np.std(ref), 0.001)
		{"ties", []float64{1, 1, 2, 5, 5, 5}, []float64{0, 1, 5, 7}, 0.49193495504995377},
		{"1000v500 shifted", sampleRef(1000), sampleLive(500, 0.1), 0.4153210357124979},
		{"1500v700 shifted down", sampleRef(1500), sampleLive(700, -0.2), 0.8456982973037549},
		{"constant reference: std floored at 0.001", []float64{2, 2, 2}, []float64{2, 3}, 500},
		{"identical", []float64{1, 2, 3}, []float64{1, 2, 3}, 0},
		{"empty", nil, []float64{1}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assertRel(t, tc.want, Wasserstein(tc.ref, tc.live), 1e-12)
		})
	}
	t.Run("a shift by c moves c/std", func(t *testing.T) {
		ref := []float64{0, 1, 2, 3}
		live := []float64{2.5, 3.5, 4.5, 5.5}
		assertRel(t, 2.5/math.Sqrt(1.25), Wasserstein(ref, live), 1e-12)
	})
	t.Run("NaN gives NaN", func(t *testing.T) {
		assert.True(t, math.IsNaN(Wasserstein([]float64{math.NaN()}, []float64{1})))
	})
}
