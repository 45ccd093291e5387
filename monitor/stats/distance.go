package stats

import (
	"math"

	"gonum.org/v1/gonum/stat"
)

// psiFloor replaces a zero proportion in PSI, as Evidently does.
const psiFloor = 1e-4

// PSI is the population stability index Σ (live_i − ref_i)·ln(live_i/ref_i)
// over proportions of the same bins (or categories). A zero proportion on
// either side is replaced by 1e-4 and the proportions are not
// renormalised (Evidently's psi). PSI ≥ 0 and is symmetric in its
// arguments. It panics if the lengths differ.
//
// Under no drift its expected value is about (K−1)·(1/n_ref + 1/n_live)
// for K bins, so a fixed threshold alarms more often on small windows.
func PSI(ref, live []float64) float64 {
	mustSameLen(len(ref), len(live))
	var psi float64
	for i, r := range ref {
		l := live[i]
		if r == 0 {
			r = psiFloor
		}
		if l == 0 {
			l = psiFloor
		}
		psi += (l - r) * math.Log(l/r)
	}
	return psi
}

// JS is the Jensen–Shannon distance √JSD between two distributions over
// the same bins, with base-2 logarithms so 0 ≤ JS ≤ 1 (1 for disjoint
// supports): scipy.spatial.distance.jensenshannon(ref, live, base=2).
// Like scipy, each side is first divided by its sum, so counts work too;
// zeros are allowed (0·log 0 = 0). A side with no mass gives 0. It panics
// if the lengths differ.
func JS(ref, live []float64) float64 {
	mustSameLen(len(ref), len(live))
	p, q := Proportions(ref), Proportions(live)
	if allZero(p) || allZero(q) {
		return 0
	}
	// gonum's JensenShannon is the divergence in nats.
	jsd := stat.JensenShannon(p, q) / math.Ln2
	return math.Sqrt(clip01(jsd))
}

// Wasserstein is the first Wasserstein (earth mover's) distance between
// the two samples' empirical distributions, ∫|F_ref − F_live|, divided by
// the reference's population standard deviation floored at 0.001:
// Evidently's wasserstein_distance_norm. Both samples must be sorted
// ascending; an empty sample gives 0 and a NaN met while merging gives NaN.
func Wasserstein(ref, live []float64) float64 {
	n1, n2 := len(ref), len(live)
	if n1 == 0 || n2 == 0 {
		return 0
	}
	var w float64
	i, j := 0, 0
	prev := math.Min(ref[0], live[0])
	for i < n1 || j < n2 {
		v := math.Inf(1)
		if i < n1 {
			v = ref[i]
		}
		if j < n2 && live[j] < v {
			v = live[j]
		}
		if math.IsNaN(v) {
			return math.NaN()
		}
		// Between prev and v both CDFs are flat.
		w += math.Abs(float64(i)/float64(n1)-float64(j)/float64(n2)) * (v - prev)
		for i < n1 && ref[i] <= v {
			i++
		}
		for j < n2 && live[j] <= v {
			j++
		}
		prev = v
	}
	return w / math.Max(stat.PopStdDev(ref, nil), 0.001)
}

func allZero(p []float64) bool {
	for _, v := range p {
		if v != 0 {
			return false
		}
	}
	return true
}

func mustSameLen(a, b int) {
	if a != b {
		panic("stats: slice length mismatch")
	}
}
