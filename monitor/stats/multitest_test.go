package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMultipleTesting(t *testing.T) {
	tests := []struct {
		name           string
		p              []float64
		alpha          float64
		bonf, bh       []bool
		bonfAdj, bhAdj []float64
	}{
		{
			// drift.md: Bonferroni threshold 0.0125 and BH thresholds
			// [0.0125, 0.025, 0.0375, 0.05] pass only p = 0.01.
			name: "drift.md vector", p: []float64{0.01, 0.04, 0.03, 0.2}, alpha: 0.05,
			bonf:    []bool{true, false, false, false},
			bh:      []bool{true, false, false, false},
			bonfAdj: []float64{0.04, 0.16, 0.12, 0.8},
			bhAdj:   []float64{0.04, 0.16 / 3, 0.16 / 3, 0.2},
		},
		{
			// Step-up: the smallest p fails its own threshold 0.0125 but
			// the largest passes 0.05, so all four are discoveries.
			name: "step-up", p: []float64{0.04, 0.03, 0.02, 0.045}, alpha: 0.05,
			bonf:    []bool{false, false, false, false},
			bh:      []bool{true, true, true, true},
			bonfAdj: []float64{0.16, 0.12, 0.08, 0.18},
			bhAdj:   []float64{0.045, 0.045, 0.045, 0.045},
		},
		{
			name: "capped at 1, NaN counts as 1", p: []float64{0.6, math.NaN(), 0.001}, alpha: 0.01,
			bonf:    []bool{false, false, true},
			bh:      []bool{false, false, true},
			bonfAdj: []float64{1, 1, 0.003},
			bhAdj:   []float64{0.9, 1, 0.003},
		},
		{
			// Significant means adjusted p strictly below alpha.
			name: "adjusted p equal to alpha", p: []float64{0.0125, 0.9, 0.9, 0.9}, alpha: 0.05,
			bonf:    []bool{false, false, false, false},
			bh:      []bool{false, false, false, false},
			bonfAdj: []float64{0.05, 1, 1, 1},
			bhAdj:   []float64{0.05, 0.9, 0.9, 0.9},
		},
		{
			name: "empty", p: []float64{}, alpha: 0.05,
			bonf: []bool{}, bh: []bool{}, bonfAdj: []float64{}, bhAdj: []float64{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.bonf, Bonferroni(tc.p, tc.alpha))
			assert.Equal(t, tc.bh, BenjaminiHochberg(tc.p, tc.alpha))
			assert.InDeltaSlice(t, tc.bonfAdj, BonferroniAdjust(tc.p), 1e-15)
			assert.InDeltaSlice(t, tc.bhAdj, BHAdjust(tc.p), 1e-15)
		})
	}
}

// BH against its textbook definition on random p-values: p_i is a
// discovery iff p_i ≤ p_(k) for the largest k with p_(k) < k·alpha/m.
func TestBenjaminiHochbergDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		m := 1 + rng.IntN(20)
		p := make([]float64, m)
		for i := range p {
			p[i] = math.Pow(rng.Float64(), 3) // skewed towards 0
		}
		const alpha = 0.05
		cut := -1.0
		for _, pk := range p {
			k := 0
			for _, q := range p {
				if q <= pk {
					k++
				}
			}
			if pk < float64(k)*alpha/float64(m) {
				cut = math.Max(cut, pk)
			}
		}
		got := BenjaminiHochberg(p, alpha)
		adj := BHAdjust(p)
		bonfAdj := BonferroniAdjust(p)
		for i := range p {
			assert.Equal(t, p[i] <= cut, got[i], "trial %d p=%v", trial, p)
			assert.GreaterOrEqual(t, adj[i], p[i])
			assert.GreaterOrEqual(t, bonfAdj[i], adj[i]-1e-15, "BH is never stricter")
			for j := range p {
				if p[i] < p[j] {
					assert.LessOrEqual(t, adj[i], adj[j], "monotone")
				}
			}
		}
	}
}
