package monitor

import (
	"strconv"

	"github.com/vaneproxy/vane/monitor/stats"
)

// Fleet-wide drift. N replicas each see 1/N of a model's traffic, and
// the per-window statistics of one replica cannot be averaged into the
// fleet's. What merges is counts: every closed window adds its values'
// counts in the reference's frozen bins to vane_monitor_bin_total (and
// their running totals to vane_monitor_bin_cumulative_total), and the
// reference's own counts are exported as gauges, so that Prometheus can
// sum the replicas and compute PSI, chi-square and a binned KS over the
// whole fleet (deploy/prometheus/drift-fleet.rules.yaml). The replicas
// must share the reference — a reference file, or one state file — for
// their bins to be the same ones.
//
// The bin label is an index, never a value from a payload: for a
// numeric feature "0" … "K-1" over the frozen quantile bins (K ≤
// monitor.bins); for a categorical one the index of the category among
// the reference's (sorted), and "other" for categories the reference
// lacks. Labels are therefore bounded by bins (numeric) or by the 256
// categories a reference keeps.

// otherBin labels a categorical window's categories the reference lacks.
const otherBin = "other"

// binCounts counts a closed window's values in fr's bins: numeric in
// the frozen quantile bins, categorical per reference category with the
// categories the reference lacks in a last, extra cell.
func binCounts(cf *closedFeature, fr *featureRef) []float64 {
	if cf.kind == kindNumeric {
		counts := make([]float64, len(fr.edges)+1)
		for _, x := range cf.vals {
			counts[stats.BinIndex(fr.edges, x)]++
		}
		return counts
	}
	_, live := categoryTable(cf.cats, fr)
	counts := make([]float64, len(fr.cats)+1)
	copy(counts, live[:len(fr.cats)])
	for _, c := range live[len(fr.cats):] {
		counts[len(fr.cats)] += c
	}
	return counts
}

// binLabel is the bin label of cell i of a feature's counts.
func binLabel(fr *featureRef, i int) string {
	if fr.kind == kindCategorical && i == len(fr.cats) {
		return otherBin
	}
	return strconv.Itoa(i)
}

// exportBins adds a closed window's bin counts to the fleet counters.
// Prometheus metrics are safe for concurrent use: it runs outside the
// version's lock.
func (v *versionState) exportBins(name string, fr *featureRef, counts []float64) {
	cum := 0.0
	for i, c := range counts {
		bin := binLabel(fr, i)
		v.mm.binTotal.WithLabelValues(v.model, v.version, name, bin).Add(c)
		if fr.kind == kindNumeric {
			cum += c
			v.mm.binCumulative.WithLabelValues(v.model, v.version, name, bin).Add(cum)
		}
	}
}

// exportReference sets the reference's counts per bin, the same cells as
// exportBins (numeric: proportion × values profiled).
func (v *versionState) exportReference(ref *refProfile) {
	labels := map[string]string{"model": v.model, "version": v.version}
	v.mm.refBins.DeletePartialMatch(labels)
	v.mm.refCumulative.DeletePartialMatch(labels)
	if ref == nil {
		return
	}
	for name, fr := range ref.features {
		if fr.kind == kindNumeric {
			cum := 0.0
			for i, p := range fr.props {
				bin := strconv.Itoa(i)
				cum += p * float64(fr.n)
				v.mm.refBins.WithLabelValues(v.model, v.version, name, bin).Set(p * float64(fr.n))
				v.mm.refCumulative.WithLabelValues(v.model, v.version, name, bin).Set(cum)
			}
			continue
		}
		for i, c := range fr.counts {
			v.mm.refBins.WithLabelValues(v.model, v.version, name, strconv.Itoa(i)).Set(c)
		}
		v.mm.refBins.WithLabelValues(v.model, v.version, name, otherBin).Set(0)
	}
}
