package monitor

import (
	"sort"

	"github.com/vaneproxy/vane/monitor/stats"
)

// Histogram is a feature's reference and open window side by side, on the
// reference's own bins, for plotting (GET /drift, the status page). Both
// series are fractions 0..1 of their values (all zeros for an empty
// window).
//
// Numeric features use the reference's frozen quantile bins: Edges are the
// interior cut points, and bin i is (Edges[i-1], Edges[i]], the first and
// last open-ended (len(Edges)+1 bins). Low and High are the smallest and
// largest value of the reference and the window, to draw the outer bins.
// Categorical features have one bin per category: the reference's, in
// order, then the window's new ones.
type Histogram struct {
	Edges      []float64 `json:"edges,omitempty"`
	Low        *float64  `json:"low,omitempty"`
	High       *float64  `json:"high,omitempty"`
	Categories []string  `json:"categories,omitempty"`
	Reference  []float64 `json:"reference"`
	Window     []float64 `json:"window"`
	// WindowCount is the open window's values so far.
	WindowCount int `json:"window_count"`
}

// histogramOf bins f's open window with fr's bins; nil when there is no
// reference for it (or its kind differs). Requires the version's lock.
func histogramOf(f *feature, fr *featureRef) *Histogram {
	if fr == nil || fr.kind != f.kind {
		return nil
	}
	h := &Histogram{WindowCount: f.n}
	if f.kind == kindNumeric {
		h.Edges = fr.edges
		h.Reference = fr.props
		counts := make([]float64, len(fr.edges)+1)
		for _, x := range f.vals {
			counts[stats.BinIndex(fr.edges, x)]++
		}
		h.Window = stats.Proportions(counts)
		if len(fr.values) > 0 {
			lo, hi := fr.values[0], fr.values[len(fr.values)-1]
			for _, x := range f.vals {
				lo, hi = min(lo, x), max(hi, x)
			}
			lo, hi = finite(lo), finite(hi)
			h.Low, h.High = &lo, &hi
		}
		return h
	}
	h.Categories = append([]string(nil), fr.cats...)
	var extra []string
	for c := range f.cats {
		if i := sort.SearchStrings(fr.cats, c); i == len(fr.cats) || fr.cats[i] != c {
			extra = append(extra, c)
		}
	}
	sort.Strings(extra)
	h.Categories = append(h.Categories, extra...)
	ref := make([]float64, len(h.Categories))
	win := make([]float64, len(h.Categories))
	copy(ref, fr.counts)
	for i, c := range h.Categories {
		win[i] = f.cats[c]
	}
	h.Reference, h.Window = stats.Proportions(ref), stats.Proportions(win)
	return h
}
