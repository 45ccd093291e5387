package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// CUSUM threshold calibration.
//
// The monitor runs one-sided CUSUMs S_t = max(0, S_{t−1} + z_t − k) on
// standardized per-window statistics z_t and alarms when S_t > h. Under no
// drift each z_t is N(0, 1) marginally, but every window of a version is
// compared with the same reference, whose own sampling error is a common
// offset: z_t = √(1−ρ)·e_t + √ρ·R with e_t and R independent N(0, 1) and
// ρ = (1/n_ref)/(1/n_window + 1/n_ref) for a difference of means. Given R,
// the sum has i.i.d. N(√ρ·R, 1−ρ) increments and Siegmund's approximation
// gives its average run length
//
//	ARL(Δ, b) = (exp(−2Δb) + 2Δb − 1) / (2Δ²),  Δ = (μ − k)/s, b = h/s + 1.166
//
// (s = √(1−ρ)); the false-alarm rate per window is E_R[1/ARL], integrated
// numerically over R. CUSUMRate computes that rate and CUSUMThreshold
// inverts it.

// siegmundARL is the average run length of a one-sided CUSUM with
// reference value k and threshold h on i.i.d. N(mu, s²) increments.
func siegmundARL(mu, s, k, h float64) float64 {
	d := (mu - k) / s
	b := h/s + 1.166
	if math.Abs(d) < 1e-9 {
		return b * b
	}
	arl := (math.Exp(-2*d*b) + 2*d*b - 1) / (2 * d * d)
	return math.Max(arl, 1)
}

// CUSUMRate is the expected false alarms per window of one one-sided
// CUSUM with reference value k and threshold h on standardized statistics
// whose windows share a reference with correlation rho (0 ≤ rho < 1).
func CUSUMRate(k, h, rho float64) float64 {
	rho = math.Min(math.Max(rho, 0), 0.99)
	s, c := math.Sqrt(1-rho), math.Sqrt(rho)
	if c == 0 {
		return 1 / siegmundARL(0, s, k, h)
	}
	// The integrand φ(r)/ARL(c·r) is a Gaussian bump times a rate that
	// saturates once c·r passes k: integrate r over [−8, 8 + k/c].
	lo, hi := -8.0, 8+k/c
	const steps = 400 // even, for Simpson's rule
	dx := (hi - lo) / steps
	sum := 0.0
	for i := 0; i <= steps; i++ {
		r := lo + float64(i)*dx
		w := 2.0
		switch {
		case i == 0 || i == steps:
			w = 1
		case i%2 == 1:
			w = 4
		}
		sum += w * math.Exp(-r*r/2) / siegmundARL(c*r, s, k, h)
	}
	return sum * dx / 3 / math.Sqrt(2*math.Pi)
}

// CUSUMThreshold returns the threshold h at which one one-sided CUSUM
// (reference value k, shared-reference correlation rho) raises rate false
// alarms per window, 0 < rate < 1.
func CUSUMThreshold(k, rho, rate float64) float64 {
	lo, hi := 0.0, 200.0
	for range 60 {
		mid := (lo + hi) / 2
		if CUSUMRate(k, mid, rho) > rate {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// ZFromP is the standard normal quantile of 1−p: the z-score whose upper
// tail is p, computed from p directly so that tiny p-values keep their
// precision. p ≤ 0 gives +Inf and p ≥ 1 −Inf.
func ZFromP(p float64) float64 {
	switch {
	case p <= 0:
		return math.Inf(1)
	case p >= 1:
		return math.Inf(-1)
	}
	return -distuv.UnitNormal.Quantile(p)
}

// Pearson is Pearson's chi-square statistic of homogeneity on the 2×K
// table (refCounts, liveCounts) without any continuity correction, with
// its p-value (chi-square survival at dof = K−1 over the categories not
// empty on both sides). It is the statistic the sequential detector
// standardizes: Yates' correction, which Chi2 applies at dof 1 to match
// scipy, makes the null distribution conservative. Tables without two
// categories or with an empty row give (0, 1, 0).
func Pearson(refCounts, liveCounts []float64) (stat, p float64, dof int) {
	k, rowRef, rowLive := tableMargins(refCounts, liveCounts)
	if k < 2 || rowRef == 0 || rowLive == 0 {
		return 0, 1, 0
	}
	total := rowRef + rowLive
	for i, r := range refCounts {
		l := liveCounts[i]
		col := r + l
		if col == 0 {
			continue
		}
		er, el := rowRef*col/total, rowLive*col/total
		stat += (r-er)*(r-er)/er + (l-el)*(l-el)/el
	}
	dof = k - 1
	return stat, distuv.ChiSquared{K: float64(dof)}.Survival(stat), dof
}

// NormalSF is the standard normal upper tail P(Z > z), accurate far into
// the tail (computed as Φ(−z)).
func NormalSF(z float64) float64 {
	return distuv.UnitNormal.CDF(-z)
}

// VarianceRatioZ standardizes the ratio of two sample variances: the
// z-score of ratio under an F(d1, d2) distribution, computed from the
// nearer tail so that extreme ratios keep their precision. For normal
// data d1 and d2 are the samples' sizes less one and the z-score is
// exact; for a kurtosis κ, d = 2n/(κ − 1) matches the variance of the
// sample variance (Satterthwaite). It is what the sequential detector's
// scale statistic uses: the F's skew keeps the lower tail (a shrinking
// variance) from raising false alarms that the log ratio's normal
// approximation would.
func VarianceRatioZ(ratio, d1, d2 float64) float64 {
	f := distuv.F{D1: d1, D2: d2}
	if ratio > 1 {
		return ZFromP(f.Survival(ratio))
	}
	return -ZFromP(f.CDF(ratio))
}
