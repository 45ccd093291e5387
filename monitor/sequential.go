package monitor

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/vaneproxy/vane/monitor/stats"
)

// The sequential detector (monitor.detector: cusum).
//
// At each window close every feature gets standardized statistics z,
// each N(0, 1) when nothing drifted: the difference of the window's and
// the reference's means over its standard error (numeric), the log ratio
// of their variances over its standard error (continuous numeric), and a
// chi-square of the value counts turned into a z-score through its
// p-value (categorical, and numeric features with at most maxLevels
// distinct values). Each z feeds a one-sided CUSUM per direction,
// S = min(cap, max(0, S + z − k)); mean and variance run two (up and
// down), chi-square one. A feature's alert is raised when any of its sums
// passes the threshold h and cleared when all are back at 0; sums are
// capped at 2h so that an alert clears within a few windows after the
// drift ends (about 2h/k).
//
// h is calibrated so that the version raises at most monitor.
// false_alarm_rate false alerts per window: with m sums in the version,
// each gets rate/(1.5·m) (1.5 a margin for the approximation; sums of different features are independent under no
// drift, so the version's rate is at most the sum), and stats.
// CUSUMThreshold finds the h giving that rate for the shared-reference
// correlation ρ = window/(window + reference rows). No hysteresis is
// stacked on top: the CUSUM is the evidence across windows.

// cusumK is the CUSUM's reference value in standard errors: tuned to a
// shift of 2k = 3 standard errors per window, which is a 0.1σ mean shift
// with windows of 1000 rows and a 10,000-row reference.
const cusumK = 1.5

// calibrationMargin divides the target rate before h is calibrated: the
// harness (make drift-eval) measured up to 1.35 times the target without
// it (Siegmund's approximation is slightly optimistic at k = 1.5, and the
// scale statistic's tails are not quite normal).
const calibrationMargin = 1.5

// zCap bounds a standardized statistic (a p-value of 0 gives +Inf).
const zCap = 100

// seqStat indexes a feature's sequential statistics.
type seqStat uint8

const (
	seqMean seqStat = iota
	seqScale
	seqChi2
	numSeqStats
)

var seqNames = [numSeqStats]string{"mean", "scale", "chi2"}

func (s seqStat) String() string { return seqNames[s] }

// twoSided reports whether the statistic runs a sum per direction.
func (s seqStat) twoSided() bool { return s != seqChi2 }

// cusum is one statistic's state: its last z and its sums.
type cusum struct {
	on       bool    // applies to the feature (set once the reference is known)
	fresh    bool    // z was computed at the last window close
	z        float64 // the last window's standardized statistic
	up, down float64 // the upward and downward sums (down: two-sided only)
}

// seqStats lists the statistics that apply to a feature of reference fr.
func seqStats(fr *featureRef) []seqStat {
	switch {
	case fr.kind == kindCategorical:
		return []seqStat{seqChi2}
	case fr.levels != nil:
		return []seqStat{seqMean, seqChi2}
	}
	return []seqStat{seqMean, seqScale}
}

// calibration is a version's CUSUM threshold for its reference and
// settings.
type calibration struct {
	ref  *refProfile
	rate float64
	win  int
	sums int     // one-sided sums in the version
	rho  float64 // shared-reference correlation of successive windows
	h    float64
}

// calibrate returns the threshold for ref under set, computing it when
// the reference, the window or the target rate changed. The caller holds
// closeMu (or owns v alone).
func (v *versionState) calibrate(ref *refProfile, set *settings) *calibration {
	c := &v.cal
	if c.ref == ref && c.rate == set.falseAlarmRate && c.win == set.window {
		return c
	}
	sums := 0
	for _, fr := range ref.features {
		for _, s := range seqStats(fr) {
			sums++
			if s.twoSided() {
				sums++
			}
		}
	}
	*c = calibration{ref: ref, rate: set.falseAlarmRate, win: set.window, sums: max(sums, 1)}
	c.rho = float64(set.window) / float64(set.window+max(ref.rows, 1))
	c.h = stats.CUSUMThreshold(cusumK, c.rho, c.rate/(calibrationMargin*float64(c.sums)))
	return c
}

// standardize computes the feature's standardized statistics for its
// closing window (numeric values sorted) against fr.
func standardize(f *closedFeature, fr *featureRef) {
	for i := range f.seq {
		f.seq[i].fresh = false
	}
	for _, s := range seqStats(fr) {
		f.seq[s].on = true
	}
	if f.kind == kindCategorical {
		ref, live := categoryTable(f.cats, fr)
		setChi2(f, ref, live)
		return
	}
	var w stats.Moments
	for _, x := range f.vals {
		w.Add(x)
	}
	if w.N == 0 || fr.mom.N == 0 {
		return
	}
	inv := 1/w.N + 1/fr.mom.N
	v := fr.mom.Variance()
	switch {
	case v > 0:
		f.seq[seqMean].set((w.Mean - fr.mom.Mean) / math.Sqrt(v*inv))
	case w.Mean != fr.mom.Mean:
		f.seq[seqMean].set(math.Copysign(zCap, w.Mean-fr.mom.Mean))
	default:
		f.seq[seqMean].set(0)
	}
	if fr.levels != nil {
		ref := append([]float64(nil), fr.levelCounts...)
		ref = append(ref, 0) // values the reference never had
		live := make([]float64, len(ref))
		for _, x := range f.vals {
			i := sort.SearchFloat64s(fr.levels, x)
			if i == len(fr.levels) || fr.levels[i] != x {
				i = len(fr.levels)
			}
			live[i]++
		}
		setChi2(f, ref, live)
		return
	}
	switch vw := w.Variance(); {
	case v <= 0 || w.N < 2:
	case vw == 0: // the feature collapsed to one value
		f.seq[seqScale].set(-zCap)
	default:
		kurt := fr.mom.Kurtosis()
		if math.IsNaN(kurt) || kurt < 1.5 {
			kurt = 1.5
		}
		f.seq[seqScale].set(stats.VarianceRatioZ(vw/v, 2*w.N/(kurt-1), 2*fr.mom.N/(kurt-1)))
	}
}

// setChi2 standardizes a chi-square of the value counts: the z-score of
// its p-value. A table without evidence (one category) leaves it unset.
func setChi2(f *closedFeature, ref, live []float64) {
	_, p, dof := stats.Pearson(ref, live)
	if dof == 0 {
		return
	}
	f.seq[seqChi2].set(stats.ZFromP(p))
}

func (c *cusum) set(z float64) {
	c.z, c.fresh = math.Max(-zCap, math.Min(zCap, z)), true
}

// stepSums adds the last window's z to a feature's sums and returns the
// largest sum.
func stepSums(seq *[numSeqStats]cusum, cal *calibration) float64 {
	limit := 2 * cal.h
	score := 0.0
	for s := range numSeqStats {
		c := &seq[s]
		if !c.on {
			continue
		}
		if c.fresh {
			c.up = math.Min(limit, math.Max(0, c.up+c.z-cusumK))
			if s.twoSided() {
				c.down = math.Min(limit, math.Max(0, c.down-c.z-cusumK))
			}
		}
		score = math.Max(score, math.Max(c.up, c.down))
	}
	return score
}

// seqPValue is the corrected p-value behind a feature's sequential
// verdict: the version's false-alarm rate per window were its threshold
// at the feature's largest sum — the margin times the number of sums
// times one sum's rate at that level, at most 1. The alert is raised exactly when this is below
// monitor.false_alarm_rate (while the score passes h).
func seqPValue(score float64, cal *calibration) float64 {
	if score <= 0 {
		return 1
	}
	return math.Min(1, calibrationMargin*float64(cal.sums)*stats.CUSUMRate(cusumK, score, cal.rho))
}

// seqSummary renders the sequential state for the log and the webhook.
func (f *feature) seqSummary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cusum=%.3g threshold=%.3g p=%.3g", f.seqScore, f.seqH, f.seqP)
	for s := range numSeqStats {
		c := &f.seq[s]
		if !c.on {
			continue
		}
		fmt.Fprintf(&b, "; %s z=%.3g up=%.3g", s, c.z, c.up)
		if s.twoSided() {
			fmt.Fprintf(&b, " down=%.3g", c.down)
		}
	}
	return b.String()
}
