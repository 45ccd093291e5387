package monitor

import (
	"math"
	"sort"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/monitor/stats"
)

// testResult is one method's outcome on one feature's closed window.
type testResult struct {
	method    method
	stat      float64 // the statistic (ks: D; chi2: chi-square)
	p         float64 // raw p-value (ks, chi2)
	pAdj      float64 // p-value after the correction across the version's features
	threshold float64
	drifted   bool
}

// verdict is the single window's: a p-value test drifts when its
// corrected p-value is below the threshold, a distance when the statistic
// is at or above it.
func (t *testResult) verdict() bool {
	if t.method.hasPValue() {
		return t.pAdj < t.threshold
	}
	return t.stat >= t.threshold
}

// compare runs every method that applies to the feature's kind on its
// window (numeric values sorted) against fr, appending to dst. A method
// whose statistic is not a finite number (a degenerate input) is left
// out; a p-value that is not a number counts as 1 (no evidence).
func compare(f *closedFeature, fr *featureRef, set *settings, dst []testResult) []testResult {
	add := func(m method, stat, p float64) {
		if math.IsNaN(stat) || math.IsInf(stat, 0) {
			return
		}
		if math.IsNaN(p) {
			p = 1
		}
		dst = append(dst, testResult{method: m, stat: stat, p: p, pAdj: p, threshold: set.thresholds[m]})
	}
	if f.kind == kindNumeric {
		ks := stats.KS
		if !stats.KSExactCheap(len(fr.values), len(f.vals)) {
			ks = stats.KSAsymptotic
		}
		d, p := ks(fr.values, f.vals)
		counts := make([]float64, len(fr.edges)+1)
		for _, x := range f.vals {
			counts[stats.BinIndex(fr.edges, x)]++
		}
		live := stats.Proportions(counts)
		add(methodKS, d, p)
		add(methodPSI, stats.PSI(fr.props, live), 0)
		add(methodJS, stats.JS(fr.props, live), 0)
		add(methodWasserstein, stats.Wasserstein(fr.values, f.vals), 0)
		return dst
	}
	refCounts, liveCounts := categoryTable(f.cats, fr)
	stat, p, _ := stats.Chi2(refCounts, liveCounts)
	add(methodChi2, stat, p)
	refProps, liveProps := stats.Proportions(refCounts), stats.Proportions(liveCounts)
	add(methodPSI, stats.PSI(refProps, liveProps), 0)
	add(methodJS, stats.JS(refProps, liveProps), 0)
	return dst
}

// categoryTable lays out a categorical feature's window against fr: the
// reference's categories, then those only the window has.
func categoryTable(live map[string]float64, fr *featureRef) (refCounts, liveCounts []float64) {
	cats := fr.cats
	var extra []string
	for c := range live {
		if i := sort.SearchStrings(fr.cats, c); i == len(fr.cats) || fr.cats[i] != c {
			extra = append(extra, c)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		cats = append(append(make([]string, 0, len(cats)+len(extra)), cats...), extra...)
	}
	refCounts = make([]float64, len(cats))
	liveCounts = make([]float64, len(cats))
	copy(refCounts, fr.counts)
	for i, c := range cats {
		liveCounts[i] = live[c]
	}
	return refCounts, liveCounts
}

// correct adjusts the p-values of one closed window across all the
// version's features (Bonferroni, Benjamini-Hochberg or none) and stores
// the adjusted value on each test.
func correct(features []closedFeature, correction string) {
	var ps []float64
	for _, f := range features {
		for _, t := range f.tests {
			if t.method.hasPValue() {
				ps = append(ps, t.p)
			}
		}
	}
	if len(ps) == 0 {
		return
	}
	var adj []float64
	switch correction {
	case configs.CorrectionNone:
		adj = ps
	case configs.CorrectionFDR:
		adj = stats.BHAdjust(ps)
	default:
		adj = stats.BonferroniAdjust(ps)
	}
	i := 0
	for k := range features {
		f := &features[k]
		for j := range f.tests {
			if f.tests[j].method.hasPValue() {
				f.tests[j].pAdj = adj[i]
				i++
			}
		}
	}
}
