package judge

import "math"

// Alpha is the level of every test: a verdict other than "no difference"
// between two equal versions happens with probability at most Alpha over
// the whole life of the comparison, however often it is looked at.
const Alpha = 0.05

// z975 is the 97.5 % normal quantile, for 95 % intervals.
const z975 = 1.959963984540054

// The verdicts.
const (
	Better       = "better"
	Worse        = "worse"
	NoDifference = "no difference"
	NotEnough    = "not enough data"
)

// MinSamples is the fewest observations each side needs before a test
// gives a verdict other than "not enough data": below it the normal
// approximations the tests rest on are poor.
const MinSamples = 100

// The mixing scales of the always-valid tests: the size of effect each
// test is tuned to find fastest (it finds any size eventually). See
// docs/compare.md.
const (
	TauErrorRate = 0.02 // difference of error rates
	TauAccuracy  = 0.05 // difference of accuracies
	TauLatency   = 0.05 // P(candidate slower) - 1/2
)

// Wilson returns the 95 % Wilson score interval of k successes in n
// trials; (0, 1) when n is 0.
func Wilson(k, n int64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	nf := float64(n)
	p := float64(k) / nf
	z2 := z975 * z975
	den := 1 + z2/nf
	mid := (p + z2/(2*nf)) / den
	half := z975 * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / den
	return math.Max(0, mid-half), math.Min(1, mid+half)
}

// Test is one comparison of a candidate with the baseline.
type Test struct {
	// Metric is error_rate, accuracy or latency.
	Metric string `json:"metric"`
	// Method names the test.
	Method string `json:"method"`
	// Baseline and Candidate are the compared figures (rates; for latency
	// the medians in seconds).
	Baseline  float64 `json:"baseline"`
	Candidate float64 `json:"candidate"`
	// NBaseline and NCandidate are the sample sizes.
	NBaseline  int64 `json:"n_baseline"`
	NCandidate int64 `json:"n_candidate"`
	// Effect is the effect size: candidate minus baseline for rates; for
	// latency P(candidate slower than baseline) + P(tie)/2 minus 1/2.
	Effect float64 `json:"effect"`
	// EffectLow and EffectHigh bound Effect with an always-valid 95 %
	// confidence sequence.
	EffectLow  float64 `json:"effect_low"`
	EffectHigh float64 `json:"effect_high"`
	// Z is the fixed-horizon z statistic (two-proportion z, or
	// Mann-Whitney's normal approximation), for reference.
	Z float64 `json:"z"`
	// PValue is the always-valid p-value: the chance, under no
	// difference, that the test would ever have looked this extreme.
	PValue float64 `json:"p_value"`
	// Alpha is the level the verdict is taken at.
	Alpha float64 `json:"alpha"`
	// Verdict is better, worse, no difference or not enough data.
	Verdict string `json:"verdict"`
}

// msprt is the mixture sequential probability ratio test of a normal
// estimate theta with variance v against theta = 0, mixing over
// N(0, tau²) (Robbins; Johari, Pekelis and Walsh, "Always valid
// inference", 2017). It returns the always-valid p-value min(1, 1/Λ) and
// the half-width of the matching 1-Alpha confidence sequence. Because Λ is
// a nonnegative martingale under no difference, P(Λ ever ≥ 1/α) ≤ α
// (Ville's inequality): looking after every request does not inflate
// the error rate.
func msprt(theta, v, tau float64) (p, half float64) {
	if !(v > 0) {
		return 1, math.Inf(1)
	}
	t2 := tau * tau
	logL := 0.5*math.Log(v/(v+t2)) + theta*theta*t2/(2*v*(v+t2))
	p = math.Min(1, math.Exp(-logL))
	half = math.Sqrt(v * (v + t2) / t2 * (2*math.Log(1/Alpha) + math.Log((v+t2)/v)))
	return p, half
}

// TestProportions compares the rate xc/nc of a candidate with xb/nb of the
// baseline (errors, or correct answers). lowerIsBetter says which way is
// better. The verdict comes from the always-valid mSPRT on the difference
// of rates, with a plug-in variance; Z is the classic two-proportion z.
func TestProportions(metric string, xb, nb, xc, nc int64, tau float64, lowerIsBetter bool) Test {
	t := Test{Metric: metric, Method: "two-proportion z; mixture SPRT (always valid)",
		NBaseline: nb, NCandidate: nc, Alpha: Alpha, PValue: 1, Verdict: NotEnough,
		EffectLow: -1, EffectHigh: 1}
	if nb > 0 {
		t.Baseline = float64(xb) / float64(nb)
	}
	if nc > 0 {
		t.Candidate = float64(xc) / float64(nc)
	}
	t.Effect = t.Candidate - t.Baseline
	if nb <= 0 || nc <= 0 {
		return t
	}
	// The plug-in variance is smoothed (half an event each side) so that
	// zero events on both sides still gives a positive variance.
	pb := (float64(xb) + 0.5) / (float64(nb) + 1)
	pc := (float64(xc) + 0.5) / (float64(nc) + 1)
	v := pb*(1-pb)/float64(nb) + pc*(1-pc)/float64(nc)
	pool := (float64(xb+xc) + 0.5) / (float64(nb+nc) + 1)
	if se := math.Sqrt(pool * (1 - pool) * (1/float64(nb) + 1/float64(nc))); se > 0 {
		t.Z = t.Effect / se
	}
	var half float64
	t.PValue, half = msprt(t.Effect, v, tau)
	t.EffectLow, t.EffectHigh = math.Max(-1, t.Effect-half), math.Min(1, t.Effect+half)
	t.Verdict = verdict(t, nb, nc, lowerIsBetter)
	return t
}

func verdict(t Test, nb, nc int64, lowerIsBetter bool) string {
	switch {
	case nb < MinSamples || nc < MinSamples:
		return NotEnough
	case t.PValue > Alpha:
		return NoDifference
	case (t.Effect < 0) == lowerIsBetter:
		return Better
	default:
		return Worse
	}
}

// TestLatency compares two latency histograms (counts per LatencyBucket)
// with the Mann-Whitney U statistic computed from the binned data (ties
// within a bucket count one half), turned into an always-valid test by
// the mSPRT on P(candidate slower) - 1/2 with U's variance under no
// difference (tie-corrected). Lower latency is better.
func TestLatency(base, cand []int64) Test {
	t := Test{Metric: "latency", Method: "Mann-Whitney U (binned); mixture SPRT (always valid)",
		Alpha: Alpha, PValue: 1, Verdict: NotEnough, EffectLow: -0.5, EffectHigh: 0.5}
	var nb, nc float64
	for i := range base {
		nb += float64(base[i])
		nc += float64(cand[i])
	}
	t.NBaseline, t.NCandidate = int64(nb), int64(nc)
	t.Baseline, t.Candidate = histQuantile(base, 0.5), histQuantile(cand, 0.5)
	if nb == 0 || nc == 0 {
		return t
	}
	var u, below, ties float64
	for i := range base {
		b, c := float64(base[i]), float64(cand[i])
		u += c * (below + b/2) // pairs where the candidate is slower, ties half
		below += b
		n := b + c
		ties += n*n*n - n
	}
	n := nb + nc
	t.Effect = u/(nb*nc) - 0.5
	varU := nb * nc / 12 * ((n + 1) - ties/(n*(n-1)))
	if varU <= 0 {
		// Every latency in one bucket: no difference is visible.
		t.EffectLow, t.EffectHigh = t.Effect, t.Effect
		t.Verdict = verdict(t, t.NBaseline, t.NCandidate, true)
		return t
	}
	t.Z = (u - nb*nc/2) / math.Sqrt(varU)
	v := varU / (nb * nc * nb * nc)
	var half float64
	t.PValue, half = msprt(t.Effect, v, TauLatency)
	t.EffectLow, t.EffectHigh = math.Max(-0.5, t.Effect-half), math.Min(0.5, t.Effect+half)
	t.Verdict = verdict(t, t.NBaseline, t.NCandidate, true)
	return t
}
