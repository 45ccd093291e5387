package stats

import (
	"math"
	"sort"
)

// Edges returns the interior cut points of bins quantile bins of the
// reference: the numpy "linear" quantiles of sortedRef at 1/bins, 2/bins,
// …, (bins−1)/bins, with repeats dropped (heavy ties give fewer bins).
// sortedRef must be sorted ascending and free of NaN; it is not modified.
//
// The bins are right-closed and open-ended, (−∞, e0], (e0, e1], …,
// (e_last, +∞), so a live value outside the reference's range still lands
// in the first or last bin; BinIndex maps a value to its bin and
// len(edges)+1 is the number of bins. bins < 2 or an empty reference gives
// nil: one bin holding everything.
func Edges(sortedRef []float64, bins int) []float64 {
	if bins < 2 || len(sortedRef) == 0 {
		return nil
	}
	edges := make([]float64, 0, bins-1)
	for i := 1; i < bins; i++ {
		q := linearQuantile(sortedRef, float64(i)/float64(bins))
		if len(edges) > 0 && q <= edges[len(edges)-1] {
			continue
		}
		edges = append(edges, q)
	}
	return edges
}

// linearQuantile is numpy's default quantile (Hyndman & Fan type 7): the
// value at virtual index (n−1)·q, interpolated between its neighbours the
// way numpy's _lerp does, from the nearer end for monotonicity.
func linearQuantile(sorted []float64, q float64) float64 {
	h := float64(len(sorted)-1) * q
	lo := math.Floor(h)
	i := int(lo)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	t := h - lo
	a, b := sorted[i], sorted[i+1]
	if t >= 0.5 {
		return b - (b-a)*(1-t)
	}
	return a + (b-a)*t
}

// BinIndex returns the bin of x for edges from Edges: the number of edges
// strictly below x, so x equal to an edge belongs to the bin that edge
// closes (np.digitize(x, edges, right=True)). The result is in
// [0, len(edges)]; nil edges give 0. NaN is not a value and callers drop
// it; it would land in the last bin.
func BinIndex(edges []float64, x float64) int {
	return sort.SearchFloat64s(edges, x)
}

// Proportions returns counts/sum(counts); all-zero (or empty) counts give
// zeros of the same length. Counts must be non-negative.
func Proportions(counts []float64) []float64 {
	out := make([]float64, len(counts))
	var sum float64
	for _, c := range counts {
		sum += c
	}
	if sum == 0 {
		return out
	}
	for i, c := range counts {
		out[i] = c / sum
	}
	return out
}
