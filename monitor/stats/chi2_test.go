package stats

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestChi2(t *testing.T) {
	tests := []struct {
		name        string
		refC, liveC []float64
		stat, p     float64
		dof         int
	}{
		{"drift.md vector", []float64{16, 18, 16, 14, 12, 12}, []float64{16, 16, 16, 16, 16, 8},
			1.6224089635854342, 0.8985262394026607, 5},
		// Yates, by hand: every expected count is 15, every |o−e| = 5 is
		// cut to 4.5, so stat = 4·4.5²/15 = 5.4 and, for one degree of
		// freedom, p = erfc(√(stat/2)). scipy: 0.02013675155034633.
		{"dof 1 with Yates", []float64{10, 20}, []float64{20, 10},
			5.4, math.Erfc(math.Sqrt(5.4 / 2)), 1},
		// Yates never overshoots: |o−e| = 5/21 < 0.5 becomes 0.
		{"Yates clamps at expected", []float64{5, 5}, []float64{5, 6}, 0, 1, 1},
		// The empty second and fourth categories are dropped: 3 left, dof 2,
		// no Yates. By hand (row totals 8 and 12 of 20, columns 7, 12, 1):
		// 4.84/2.8 + 4.84/4.2 + 3.24/4.8 + 3.24/7.2 + 0.16/0.4 + 0.16/0.6;
		// for two degrees of freedom p = exp(−stat/2).
		{"both-zero categories dropped", []float64{5, 0, 3, 0}, []float64{2, 0, 9, 1},
			4.84/2.8 + 4.84/4.2 + 3.24/4.8 + 3.24/7.2 + 0.16/0.4 + 0.16/0.6,
			math.Exp(-(4.84/2.8 + 4.84/4.2 + 3.24/4.8 + 3.24/7.2 + 0.16/0.4 + 0.16/0.6) / 2), 2},
		// scipy 1.10.1 chi2_contingency
		{"strong drift", []float64{120, 80, 40, 10}, []float64{50, 60, 70, 30},
			46.73763323511221, 3.952174556884604e-10, 3},
		{"one category", []float64{10, 0}, []float64{5, 0}, 0, 1, 0},
		{"all empty", []float64{0, 0}, []float64{0, 0}, 0, 1, 0},
		{"empty live row", []float64{3, 4, 5}, []float64{0, 0, 0}, 0, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stat, p, dof := Chi2(tc.refC, tc.liveC)
			assertRel(t, tc.stat, stat, 1e-12)
			assertRel(t, tc.p, p, 1e-9)
			assert.Equal(t, tc.dof, dof)
		})
	}
	assert.Panics(t, func() { Chi2([]float64{1, 2}, []float64{1}) })
}
