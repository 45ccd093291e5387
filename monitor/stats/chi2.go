package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Chi2 is Pearson's chi-square test of independence on the 2×K
// contingency table whose rows are refCounts and liveCounts, as
// scipy.stats.chi2_contingency(table) with its default correction=True.
//
// Categories with a zero count on both sides are dropped first (scipy
// would reject their zero expected frequency). Expected counts are
// row total × column total / grand total; dof = K−1 for the K categories
// left. Yates' continuity correction — each observed count moved towards
// its expected count by min(0.5, |difference|) — is applied only when
// dof = 1. p is the chi-square survival function at stat with dof degrees
// of freedom.
//
// Undefined tables carry no evidence: with fewer than two categories left
// (dof 0) or a row that sums to zero, Chi2 returns stat 0 and p 1 (dof is
// still K−1 when K ≥ 1). Counts must be non-negative; it panics if the
// lengths differ.
func Chi2(refCounts, liveCounts []float64) (stat, p float64, dof int) {
	k, rowRef, rowLive := tableMargins(refCounts, liveCounts)
	if k < 2 || rowRef == 0 || rowLive == 0 {
		return 0, 1, max(k-1, 0)
	}
	dof = k - 1
	total := rowRef + rowLive
	for i, r := range refCounts {
		l := liveCounts[i]
		col := r + l
		if col == 0 {
			continue
		}
		stat += chi2Term(r, rowRef*col/total, dof)
		stat += chi2Term(l, rowLive*col/total, dof)
	}
	p = distuv.ChiSquared{K: float64(dof)}.Survival(stat)
	return stat, p, dof
}

// tableMargins reads the 2×K table (refCounts, liveCounts) as Chi2 and
// Pearson see it: k counts the categories not empty on both sides, rowRef
// and rowLive are the two row totals. It panics if the lengths differ.
func tableMargins(refCounts, liveCounts []float64) (k int, rowRef, rowLive float64) {
	mustSameLen(len(refCounts), len(liveCounts))
	for i, r := range refCounts {
		if r == 0 && liveCounts[i] == 0 {
			continue
		}
		k++
		rowRef += r
		rowLive += liveCounts[i]
	}
	return k, rowRef, rowLive
}

// chi2Term is (observed − expected)²/expected, with Yates' correction
// when dof is 1.
func chi2Term(observed, expected float64, dof int) float64 {
	diff := observed - expected
	if dof == 1 {
		diff = math.Copysign(math.Max(math.Abs(diff)-0.5, 0), diff)
	}
	return diff * diff / expected
}
