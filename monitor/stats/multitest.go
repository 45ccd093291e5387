package stats

import (
	"math"
	"sort"
)

// Bonferroni reports, per p-value, whether it is significant at family
// level alpha after Bonferroni's correction: BonferroniAdjust(p)[i] <
// alpha, i.e. p·m < alpha for m tests. A NaN p-value counts as 1.
func Bonferroni(p []float64, alpha float64) []bool {
	return below(BonferroniAdjust(p), alpha)
}

// BenjaminiHochberg reports, per p-value, whether it is a discovery at
// false discovery rate alpha by the Benjamini–Hochberg step-up procedure:
// BHAdjust(p)[i] < alpha, i.e. p_i ≤ p_(k) for the largest rank k with
// p_(k)·m/k < alpha. A NaN p-value counts as 1.
func BenjaminiHochberg(p []float64, alpha float64) []bool {
	return below(BHAdjust(p), alpha)
}

// BonferroniAdjust returns min(1, p_i·m) for m = len(p), as statsmodels'
// multipletests(method="bonferroni"). A NaN p-value counts as 1.
func BonferroniAdjust(p []float64) []float64 {
	m := float64(len(p))
	out := make([]float64, len(p))
	for i, v := range p {
		out[i] = math.Min(1, pOrOne(v)*m)
	}
	return out
}

// BHAdjust returns the Benjamini–Hochberg adjusted p-values, as
// scipy.stats.false_discovery_control(p, method="bh"): with the p-values
// ranked ascending, min over ranks j ≥ k of p_(j)·m/j, capped at 1. The
// result is monotone in p and in input order. A NaN p-value counts as 1.
func BHAdjust(p []float64) []float64 {
	m := len(p)
	order := make([]int, m)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return pOrOne(p[order[a]]) < pOrOne(p[order[b]])
	})
	out := make([]float64, m)
	running := 1.0
	for r := m - 1; r >= 0; r-- {
		i := order[r]
		running = math.Min(running, pOrOne(p[i])*(float64(m)/float64(r+1)))
		out[i] = running
	}
	return out
}

func below(adjusted []float64, alpha float64) []bool {
	out := make([]bool, len(adjusted))
	for i, v := range adjusted {
		out[i] = v < alpha
	}
	return out
}

func pOrOne(p float64) float64 {
	if math.IsNaN(p) {
		return 1
	}
	return p
}
