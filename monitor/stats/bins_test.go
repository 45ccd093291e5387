package stats

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEdges(t *testing.T) {
	tests := []struct {
		name string
		ref  []float64
		bins int
		want []float64
	}{
		// np.unique(np.quantile(ref, np.arange(1, bins)/bins)), numpy 1.24.
		{"deciles of sampleRef(1000)", sampleRef(1000), 10, []float64{
			0.31622741518562675, 0.44721337553699736, 0.5477224004860624,
			0.6332384489820931, 0.7078071472797842, 0.7745966058486142,
			0.8366599825214759, 0.8944271635556668, 0.9481607960416089}},
		{"quartiles of 0..4", []float64{0, 1, 2, 3, 4}, 4, []float64{1, 2, 3}},
		{"ties collapse bins", []float64{1, 1, 1, 1, 1, 1, 2, 3, 4, 5}, 5,
			[]float64{1, 1.3999999999999995, 3.2}},
		// numpy interpolates from the upper neighbour when the fraction
		// is ≥ 0.5: a + (b−a)·t would give 2 and 3.6 here.
		{"numpy's lerp", []float64{0.9, 2.55, 5.7, 6.5, 7.61}, 6,
			[]float64{1.9999999999999998, 3.5999999999999996, 5.7, 6.233333333333333, 6.87}},
		{"constant reference keeps one cut", []float64{7, 7, 7}, 10, []float64{7}},
		{"single value", []float64{2}, 4, []float64{2}},
		{"one bin", []float64{1, 2, 3}, 1, nil},
		{"no reference", nil, 10, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Edges(tc.ref, tc.bins)
			assert.Equal(t, tc.want, got, "numpy's quantiles, to the bit")
		})
	}
}

func TestEdgesSplitReferenceEvenly(t *testing.T) {
	ref := sampleRef(1000)
	edges := Edges(ref, 10)
	require.Len(t, edges, 9)
	counts := make([]int, len(edges)+1)
	for _, v := range ref {
		counts[BinIndex(edges, v)]++
	}
	for i, c := range counts {
		assert.InDelta(t, 100, c, 2, "bin %d", i)
	}
}

func TestBinIndex(t *testing.T) {
	edges := []float64{1, 2, 3}
	tests := []struct {
		x    float64
		want int
	}{
		{math.Inf(-1), 0},
		{-50, 0},
		{1, 0}, // right-closed: an edge belongs to the bin it closes
		{math.Nextafter(1, 2), 1},
		{2.5, 2},
		{3, 2},
		{3.5, 3},
		{1e300, 3}, // beyond the reference: still the last bin
		{math.Inf(1), 3},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, BinIndex(edges, tc.x), "x=%v", tc.x)
	}
	assert.Equal(t, 0, BinIndex(nil, 42), "no edges: one bin")
}

func TestProportions(t *testing.T) {
	tests := []struct {
		name         string
		counts, want []float64
	}{
		{"counts", []float64{2, 6, 0, 2}, []float64{0.2, 0.6, 0, 0.2}},
		{"all zero", []float64{0, 0, 0}, []float64{0, 0, 0}},
		{"empty", []float64{}, []float64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDeltaSlice(t, tc.want, Proportions(tc.counts), 1e-15)
			assert.Len(t, Proportions(tc.counts), len(tc.counts))
		})
	}
}
