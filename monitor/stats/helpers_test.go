package stats

import (
	"math"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
)

// assertRel checks got against want to a relative tolerance, or exactly
// when want is 0 (testify's InEpsilon cannot divide by a zero want).
func assertRel(t *testing.T, want, got, rel float64, msgAndArgs ...any) {
	t.Helper()
	if want == 0 {
		assert.Zero(t, got, msgAndArgs...)
		return
	}
	assert.InEpsilon(t, want, got, rel, msgAndArgs...)
}

// sampleRef and sampleLive are deterministic samples that numpy rebuilds
// bit for bit (integer arithmetic, one division, one correctly rounded
// sqrt), so scipy's answers for them can be pinned here:
//
//	ref  = np.sqrt(((np.arange(n) * 7919) % 1009) / 1009.0)
//	live = np.sqrt(((np.arange(n) * 104729 + 17) % 997) / 997.0) + shift
//
// Both repeat values once n exceeds the modulus, so ties are exercised.
func sampleRef(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Sqrt(float64((i*7919)%1009) / 1009.0)
	}
	sort.Float64s(out)
	return out
}

func sampleLive(n int, shift float64) []float64 {
	out := make([]float64, n)
	for j := range out {
		out[j] = math.Sqrt(float64((j*104729+17)%997)/997.0) + shift
	}
	sort.Float64s(out)
	return out
}
