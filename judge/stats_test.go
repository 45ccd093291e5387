package judge

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWilson(t *testing.T) {
	lo, hi := Wilson(0, 0)
	assert.Equal(t, 0.0, lo)
	assert.Equal(t, 1.0, hi)
	// Reference values (R: prop.test(81, 263, correct = FALSE)$conf.int).
	lo, hi = Wilson(81, 263)
	assert.InDelta(t, 0.2553, lo, 5e-4)
	assert.InDelta(t, 0.3662, hi, 5e-4)
	lo, hi = Wilson(10, 10)
	assert.InDelta(t, 0.7225, lo, 5e-4)
	assert.Equal(t, 1.0, hi)
}

// TestAAPolledThroughout is the peeking test: two versions with equal
// error rates and equal latency distributions, /compare polled every 200
// requests per version up to 10,000 each. A run fails when any poll says
// better or worse; at most 5 % of runs may fail. The same runs judged by
// the fixed-horizon z-test at every poll fail far more often, which shows
// the simulation can see the peeking problem at all.
func TestAAPolledThroughout(t *testing.T) {
	const (
		reps  = 200
		n     = 10_000
		every = 200
		p     = 0.03
	)
	rng := rand.New(rand.NewPCG(13, 1))
	var flips, latFlips, naive, final int
	for range reps {
		var xb, xc, nb, nc int64
		hb, hc := make([]int64, LatencyBuckets), make([]int64, LatencyBuckets)
		flipped, latFlipped, naiveFlipped := false, false, false
		for i := 1; i <= n; i++ {
			nb++
			nc++
			if rng.Float64() < p {
				xb++
			}
			if rng.Float64() < p {
				xc++
			}
			hb[LatencyBucket(lognormal(rng))]++
			hc[LatencyBucket(lognormal(rng))]++
			if i%every != 0 {
				continue
			}
			tr := TestProportions("error_rate", xb, nb, xc, nc, TauErrorRate, true)
			if tr.Verdict == Better || tr.Verdict == Worse {
				flipped = true
			}
			if i >= MinSamples && math.Abs(tr.Z) > z975 {
				naiveFlipped = true
			}
			if tl := TestLatency(hb, hc); tl.Verdict == Better || tl.Verdict == Worse {
				latFlipped = true
			}
		}
		if flipped {
			flips++
		}
		if latFlipped {
			latFlips++
		}
		if naiveFlipped {
			naive++
		}
		if TestProportions("error_rate", xb, nb, xc, nc, TauErrorRate, true).Verdict == NoDifference {
			final++
		}
	}
	t.Logf("A/A runs with a verdict at any poll: error rate %d/%d, latency %d/%d; fixed-horizon z: %d/%d",
		flips, reps, latFlips, reps, naive, reps)
	assert.LessOrEqual(t, flips, reps*5/100, "error-rate verdict flipped by chance")
	assert.LessOrEqual(t, latFlips, reps*5/100, "latency verdict flipped by chance")
	assert.GreaterOrEqual(t, final, reps*95/100, "final verdicts of no difference")
	assert.Greater(t, naive, reps*10/100, "the naive test should be fooled by peeking")
}

func lognormal(rng *rand.Rand) time.Duration {
	return time.Duration(math.Exp(rng.NormFloat64()*0.5) * float64(5*time.Millisecond))
}

// TestRealDifference: 2 % against 4 % errors at 5,000 requests each is
// "worse" for the 4 % version and "better" the other way round; drawn at
// random (binomial counts) it is "worse" in at least 95 % of runs (the
// expected z is 5.9 and the always-valid test needs about 3.1).
func TestRealDifference(t *testing.T) {
	tr := TestProportions("error_rate", 100, 5000, 200, 5000, TauErrorRate, true)
	require.Equal(t, Worse, tr.Verdict, "%+v", tr)
	assert.Less(t, tr.PValue, Alpha)
	assert.Greater(t, tr.EffectLow, 0.0, "the interval excludes no difference")
	assert.Equal(t, Better, TestProportions("error_rate", 200, 5000, 100, 5000, TauErrorRate, true).Verdict)
	// Accuracy runs the other way: higher is better.
	assert.Equal(t, Better, TestProportions("accuracy", 4800, 5000, 4900, 5000, TauAccuracy, false).Verdict)

	rng := rand.New(rand.NewPCG(13, 2))
	const runs = 200
	worse := 0
	for range runs {
		var xb, xc int64
		for range 5000 {
			if rng.Float64() < 0.02 {
				xb++
			}
			if rng.Float64() < 0.04 {
				xc++
			}
		}
		tr := TestProportions("error_rate", xb, 5000, xc, 5000, TauErrorRate, true)
		require.NotEqual(t, Better, tr.Verdict, "%d vs %d errors", xb, xc)
		if tr.Verdict == Worse {
			worse++
		}
	}
	t.Logf("2%% vs 4%% at 5,000 each: worse in %d/%d runs", worse, runs)
	assert.GreaterOrEqual(t, worse, runs*95/100)
}

func TestProportionsEdges(t *testing.T) {
	tr := TestProportions("error_rate", 0, 0, 0, 0, TauErrorRate, true)
	assert.Equal(t, NotEnough, tr.Verdict)
	tr = TestProportions("error_rate", 0, 50, 40, 50, TauErrorRate, true)
	assert.Equal(t, NotEnough, tr.Verdict, "below MinSamples")
	tr = TestProportions("error_rate", 0, 5000, 0, 5000, TauErrorRate, true)
	assert.Equal(t, NoDifference, tr.Verdict, "no errors on either side")
	assert.False(t, math.IsNaN(tr.PValue))
}

func TestLatencyDetectsShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 3))
	hb, hc := make([]int64, LatencyBuckets), make([]int64, LatencyBuckets)
	for range 3000 {
		hb[LatencyBucket(lognormal(rng))]++
		hc[LatencyBucket(lognormal(rng)*13/10)]++ // 30 % slower
	}
	tl := TestLatency(hb, hc)
	assert.Equal(t, Worse, tl.Verdict, "%+v", tl)
	assert.Greater(t, tl.Effect, 0.1)
	assert.InDelta(t, 1.3, tl.Candidate/tl.Baseline, 0.15, "medians to within a bucket")
	assert.Equal(t, Better, TestLatency(hc, hb).Verdict)
	// All in one bucket: nothing to tell apart.
	one := make([]int64, LatencyBuckets)
	one[40] = 500
	assert.Equal(t, NoDifference, TestLatency(one, one).Verdict)
}

// TestAAAcrossBaseRates repeats the error-rate A/A check at rare and
// common base rates, where the normal approximation behind the test is
// weakest: at most 5 % of runs may ever show a verdict.
func TestAAAcrossBaseRates(t *testing.T) {
	const reps, n, every = 100, 10_000, 200
	for _, p := range []float64{0.002, 0.05, 0.3} {
		rng := rand.New(rand.NewPCG(13, uint64(p*1e4)))
		flips := 0
		for range reps {
			var xb, xc int64
			flipped := false
			for i := 1; i <= n; i++ {
				if rng.Float64() < p {
					xb++
				}
				if rng.Float64() < p {
					xc++
				}
				if i%every == 0 {
					v := TestProportions("error_rate", xb, int64(i), xc, int64(i), TauErrorRate, true).Verdict
					flipped = flipped || v == Better || v == Worse
				}
			}
			if flipped {
				flips++
			}
		}
		t.Logf("base rate %g: a verdict at some poll in %d/%d runs", p, flips, reps)
		assert.LessOrEqual(t, flips, reps*5/100, "base rate %g", p)
	}
}
