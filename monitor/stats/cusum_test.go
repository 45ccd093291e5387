package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"gonum.org/v1/gonum/stat/distuv"
)

// Siegmund's approximation against the published table of one-sided
// CUSUM average run lengths (Montgomery, Introduction to Statistical
// Quality Control, k = 0.5: h = 4 → 336, h = 5 → 930).
func TestCUSUMRateIndependentWindows(t *testing.T) {
	assertRel(t, 336, 1/CUSUMRate(0.5, 4, 0), 0.01)
	assertRel(t, 930, 1/CUSUMRate(0.5, 5, 0), 0.01)
}

// A shared reference raises the false-alarm rate; a Monte Carlo run of
// the model the formula integrates (z_t = √(1−ρ)e_t + √ρR, R fixed per
// run) agrees within its noise.
func TestCUSUMRateSharedReference(t *testing.T) {
	k, h, rho := 1.0, 3.0, 0.1
	rate := CUSUMRate(k, h, rho)
	assert.Greater(t, rate, CUSUMRate(k, h, 0))
	rng := rand.New(rand.NewPCG(1, 2))
	alarms, steps := 0, 0
	for range 2000 {
		r := rng.NormFloat64() * math.Sqrt(rho)
		s := 0.0
		for range 500 {
			s = math.Max(0, s+r+math.Sqrt(1-rho)*rng.NormFloat64()-k)
			steps++
			if s > h {
				alarms++
				s = 0
			}
		}
	}
	mc := float64(alarms) / float64(steps)
	// About 1,500 alarms from 2,000 references: the Monte Carlo error is
	// a few percent, and so is Siegmund's approximation.
	assertRel(t, mc, rate, 0.15)
}

func TestCUSUMThresholdInvertsRate(t *testing.T) {
	for _, rho := range []float64{0, 0.09, 0.2} {
		h := CUSUMThreshold(1.5, rho, 1e-5)
		assertRel(t, 1e-5, CUSUMRate(1.5, h, rho), 1e-6)
	}
	assert.Greater(t, CUSUMThreshold(1.5, 0.2, 1e-5), CUSUMThreshold(1.5, 0.09, 1e-5))
}

func TestZFromP(t *testing.T) {
	assertRel(t, 1.959963984540054, ZFromP(0.025), 1e-12)
	assertRel(t, -1.959963984540054, ZFromP(0.975), 1e-12)
	assertRel(t, 1e-20, distuv.UnitNormal.CDF(-ZFromP(1e-20)), 1e-9)
	assert.True(t, math.IsInf(ZFromP(0), 1))
	assert.True(t, math.IsInf(ZFromP(1), -1))
}

func TestPearson(t *testing.T) {
	ref, live := []float64{16, 18, 16, 14, 12, 12}, []float64{16, 16, 16, 16, 16, 8}
	s, p, dof := Pearson(ref, live)
	cs, cp, cdof := Chi2(ref, live)
	assert.Equal(t, cdof, dof)
	assertRel(t, cs, s, 1e-12)
	assertRel(t, cp, p, 1e-12)
	// dof 1, no Yates: [[10, 20], [20, 10]] → expected 15 each, χ² = 4·25/15.
	s, p, dof = Pearson([]float64{10, 20}, []float64{20, 10})
	assert.Equal(t, 1, dof)
	assertRel(t, 100.0/15, s, 1e-12)
	assertRel(t, 0.009823274507519235, p, 1e-9) // scipy chi2.sf(20/3, 1)
	s, p, _ = Pearson([]float64{5, 0}, []float64{3, 0})
	assert.Equal(t, 0.0, s)
	assert.Equal(t, 1.0, p)
}

func TestMoments(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	xs := make([]float64, 1001)
	for i := range xs {
		xs[i] = rng.ExpFloat64()*2 + 5
	}
	var all, a, b Moments
	for i, x := range xs {
		all.Add(x)
		if i < 400 {
			a.Add(x)
		} else {
			b.Add(x)
		}
	}
	// Two-pass reference values.
	mean := 0.0
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	var m2, m4 float64
	for _, x := range xs {
		d := x - mean
		m2 += d * d
		m4 += d * d * d * d
	}
	assertRel(t, mean, all.Mean, 1e-12)
	assertRel(t, m2/float64(len(xs)-1), all.Variance(), 1e-10)
	assertRel(t, float64(len(xs))*m4/(m2*m2), all.Kurtosis(), 1e-9)
	a.Merge(b)
	assertRel(t, all.Mean, a.Mean, 1e-12)
	assertRel(t, all.M2, a.M2, 1e-10)
	assertRel(t, all.M3, a.M3, 1e-8)
	assertRel(t, all.M4, a.M4, 1e-9)
	var empty Moments
	empty.Merge(all)
	assert.Equal(t, all, empty)
	assert.Equal(t, 0.0, (&Moments{N: 1}).Variance())
}

// VarianceRatioZ is the normal quantile of the F distribution's CDF,
// checked through gonum's F distribution and its median.
func TestVarianceRatioZ(t *testing.T) {
	f := distuv.F{D1: 999, D2: 9999}
	for _, r := range []float64{0.8, 0.95, 1, 1.05, 1.3} {
		z := VarianceRatioZ(r, 999, 9999)
		assertRel(t, f.CDF(r), distuv.UnitNormal.CDF(z), 1e-9)
	}
	assert.Greater(t, VarianceRatioZ(1.3, 999, 9999), 5.0)
	assert.Less(t, VarianceRatioZ(0.7, 999, 9999), -5.0)
	// F(d, d) at ratio 1 is the median for equal degrees of freedom.
	assert.InDelta(t, 0, VarianceRatioZ(1, 500, 500), 1e-9)
}
