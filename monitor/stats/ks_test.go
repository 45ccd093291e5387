package stats

import (
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func linspace(a, b float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = a + (b-a)*float64(i)/float64(n-1)
	}
	return out
}

func TestKSDriftVectors(t *testing.T) {
	x := slices.Concat(slices.Repeat([]float64{2}, 3), slices.Repeat([]float64{3}, 4),
		slices.Repeat([]float64{5}, 5), slices.Repeat([]float64{6}, 4))
	x1 := make([]float64, len(x))
	for i, v := range x {
		x1[i] = v + 1
	}
	shifted := linspace(1, 100, 110)
	for i := range shifted {
		shifted[i] += 20.1
	}
	tests := []struct {
		name      string
		ref, live []float64
		d, p      float64
	}{
		{"two vs four", []float64{1.01, 2.01}, []float64{1, 2, 3, 4}, 0.5, 14.0 / 15},
		{"ties, equal sizes", x, x1, 0.3125, 0.42629346134549484},
		{"100 vs 110", linspace(1, 100, 100), shifted, 0.21090909090909091, 0.015739183865606153},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, p := KS(tc.ref, tc.live)
			assert.InDelta(t, tc.d, d, 1e-12)
			assertRel(t, tc.p, p, 1e-9)
		})
	}
}

// Expected values from scipy 1.10.1 (Debian's python3-scipy),
// stats.ks_2samp(ref, live) with method="auto", on sampleRef/sampleLive.
func TestKSMatchesSciPy(t *testing.T) {
	tests := []struct {
		name   string
		n1, n2 int
		shift  float64
		d, p   float64
	}{
		{"product 1000v500 no drift", 1000, 500, 0, 0.008, 1},
		{"product 1000v500 mild", 1000, 500, 0.02, 0.043, 0.5639454005192106},
		{"product 1000v500 drift", 1000, 500, 0.04, 0.081, 0.024708794794001752},
		{"product 1000v500 strong", 1000, 500, 0.1, 0.192, 3.532892967141295e-11},
		{"coprime 1000v499", 1000, 499, 0.03, 0.06314829659318637, 0.13302438997378233},
		{"equal 400", 400, 400, 0.05, 0.1, 0.036569856408414286},
		{"small 37v23", 37, 23, 0.1, 0.21739130434782608, 0.43668235823621987},
		{"exact at the limit 10000v10000", 10000, 10000, 0.01, 0.0205, 0.02991364969994266},
		{"exact at the limit 10000v9999", 10000, 9999, 0.02, 0.040105410541054105, 1.9871650445636922e-07},
		{"asymptotic 10001v5000 smirnov", 10001, 5000, 0.02, 0.04000139986001405, 4.526556993813696e-05},
		{"asymptotic 20000v150 pelz-good", 20000, 150, 0.03, 0.05571666666666664, 0.7225252562981503},
		{"asymptotic 20000v100 n=100", 20000, 100, 0.05, 0.09799999999999998, 0.2737864840078633},
		{"asymptotic 12000v12000", 12000, 12000, 0.005, 0.010583333333333389, 0.5089195942587448},
		{"asymptotic 30000v20000 pelz-good", 30000, 20000, 0.005, 0.010650000000000048, 0.13049908432199442},
		{"asymptotic 30000v20000 tiny p", 30000, 20000, 0.02, 0.04023333333333334, 2.5797292863734077e-17},
		{"asymptotic 10001v10001 en 5000.5 rounds to even", 10001, 10001, 0.01, 0.020497950204979465, 0.029528834549986227},
		{"asymptotic 3v10001 en rounds to 3", 3, 10001, 0.1, 1.0 / 3, 0.7777777777777778},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, p := KS(sampleRef(tc.n1), sampleLive(tc.n2, tc.shift))
			assert.InDelta(t, tc.d, d, 1e-12)
			assertRel(t, tc.p, p, 1e-9)
		})
	}
}

// bruteExactP is P(D_{m,n} ≥ h·g/(m·n)) by counting, with big integers,
// the monotone lattice paths from (0,0) to (m,n) that stay strictly inside
// |x·n − y·m| < h·g. Slow and obviously correct; small m, n only.
func bruteExactP(m, n int, num int64) float64 {
	paths := make([][]*big.Int, m+1)
	for x := range paths {
		paths[x] = make([]*big.Int, n+1)
		for y := range paths[x] {
			c := new(big.Int)
			dist := int64(x*n - y*m)
			if dist < 0 {
				dist = -dist
			}
			switch {
			case dist >= num:
				// outside the band: no inside path reaches it
			case x == 0 && y == 0:
				c.SetInt64(1)
			default:
				if x > 0 {
					c.Add(c, paths[x-1][y])
				}
				if y > 0 {
					c.Add(c, paths[x][y-1])
				}
			}
			paths[x][y] = c
		}
	}
	total := new(big.Int).Binomial(int64(m+n), int64(n))
	inside := new(big.Rat).SetFrac(paths[m][n], total)
	p, _ := new(big.Rat).Sub(big.NewRat(1, 1), inside).Float64()
	return p
}

func TestKSExactMatchesBruteForce(t *testing.T) {
	sizes := [][2]int{{1, 1}, {1, 5}, {2, 3}, {3, 3}, {4, 6}, {5, 7}, {7, 5}, {8, 8},
		{9, 12}, {10, 15}, {12, 12}, {13, 11}, {20, 30}, {25, 40}, {40, 40}, {39, 26}}
	for _, sz := range sizes {
		m, n := sz[0], sz[1]
		g := gcd(m, n)
		lcm := m / g * n
		for h := 1; h <= lcm; h += max(1, lcm/60) {
			num := int64(h * g)
			want := bruteExactP(m, n, num)
			got, ok := ksExactP(m, n, num)
			require.True(t, ok, "m=%d n=%d h=%d", m, n, h)
			if want < 1e-300 {
				assert.InDelta(t, want, got, 1e-300, "m=%d n=%d h=%d", m, n, h)
				continue
			}
			assertRel(t, want, got, 1e-11, "m=%d n=%d h=%d", m, n, h)
		}
	}
}

// End to end on random integer data (many ties): D by the definition,
// evaluating both ECDFs at every pooled value, and p by path counting.
func TestKSRandomSamplesAgainstDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n1, n2 := 1+rng.IntN(35), 1+rng.IntN(35)
		spread := 2 + rng.IntN(30)
		ref, live := make([]float64, n1), make([]float64, n2)
		for i := range ref {
			ref[i] = float64(rng.IntN(spread))
		}
		for j := range live {
			live[j] = float64(rng.IntN(spread) + rng.IntN(3))
		}
		sort.Float64s(ref)
		sort.Float64s(live)
		var num int64
		for _, v := range slices.Concat(ref, live) {
			a, b := 0, 0
			for _, r := range ref {
				if r <= v {
					a++
				}
			}
			for _, l := range live {
				if l <= v {
					b++
				}
			}
			num = max(num, int64(math.Abs(float64(a*n2-b*n1))))
		}
		wantD := float64(num) / float64(n1*n2)
		wantP := 1.0
		if num > 0 {
			wantP = bruteExactP(n1, n2, num)
		}
		d, p := KS(ref, live)
		assert.Equal(t, wantD, d, "trial %d", trial)
		assertRel(t, wantP, p, 1e-11, "trial %d n1=%d n2=%d", trial, n1, n2)
	}
}

func TestKSSymmetric(t *testing.T) {
	tests := []struct {
		name   string
		n1, n2 int
		shift  float64
	}{
		{"1000v500", 1000, 500, 0.04},
		{"300v200", 300, 200, -0.05},
		{"coprime 401v257", 401, 257, 0.03},
		{"asymptotic 12000v700", 12000, 700, 0.02},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := sampleRef(tc.n1), sampleLive(tc.n2, tc.shift)
			d1, p1 := KS(a, b)
			d2, p2 := KS(b, a)
			assert.Equal(t, d1, d2)
			assertRel(t, p1, p2, 1e-14)
			assert.Less(t, p1, 1.0, "the case must have some drift to be a check")
		})
	}
}

// The product scenario (reference 1000, window 500): the exact lattice
// p-value and scipy's asymptotic kstwo p-value must tell the same story
// in the mid range, which guards both against gross errors.
func TestKSExactAgreesWithAsymptotic1000v500(t *testing.T) {
	const n1, n2 = 1000, 500
	checked := 0
	for h := 1; h <= 1000; h++ { // g = 500, lcm = 1000, D = h/1000
		exact, ok := ksExactP(n1, n2, int64(h*500))
		require.True(t, ok)
		if exact > 0.5 {
			continue
		}
		if exact < 0.01 {
			break // p falls with D
		}
		asym := ksAsymptoticP(n1, n2, float64(h)/1000)
		assertRel(t, exact, asym, 0.10, "D=%v", float64(h)/1000)
		checked++
	}
	assert.Greater(t, checked, 10)
}

func TestKSEdgeCases(t *testing.T) {
	t.Run("empty sample carries no evidence", func(t *testing.T) {
		d, p := KS(nil, []float64{1, 2})
		assert.Equal(t, [2]float64{0, 1}, [2]float64{d, p})
		d, p = KS([]float64{1}, []float64{})
		assert.Equal(t, [2]float64{0, 1}, [2]float64{d, p})
	})
	t.Run("identical samples", func(t *testing.T) {
		a := sampleRef(700)
		d, p := KS(a, slices.Clone(a))
		assert.Equal(t, [2]float64{0, 1}, [2]float64{d, p})
	})
	t.Run("disjoint samples", func(t *testing.T) {
		d, p := KS([]float64{1, 2, 3}, []float64{4, 5, 6})
		assert.Equal(t, 1.0, d)
		assertRel(t, 0.1, p, 1e-12) // 2 of C(6,3) = 20 orderings
	})
	t.Run("NaN gives NaN", func(t *testing.T) {
		d, p := KS([]float64{math.NaN(), 1}, []float64{1, 2})
		assert.True(t, math.IsNaN(d) && math.IsNaN(p))
	})
	t.Run("inputs are not modified", func(t *testing.T) {
		a, b := sampleRef(50), sampleLive(30, 0.1)
		ca, cb := slices.Clone(a), slices.Clone(b)
		KS(a, b)
		assert.Equal(t, ca, a)
		assert.Equal(t, cb, b)
	})
}

func TestKolmogorovQ(t *testing.T) {
	tests := []struct {
		lambda, want float64
	}{
		{0.5, 0.96394524366487511},
		{1, 0.26999967167735456},
		{2, 0.00067092525577969533},
		{0, 1},
		{-1, 1},
		{0.03, 1},
		{30, 0},
	}
	for _, tc := range tests {
		assertRel(t, tc.want, KolmogorovQ(tc.lambda), 1e-12, "λ=%v", tc.lambda)
	}
	assert.True(t, math.IsNaN(KolmogorovQ(math.NaN())))

	// The two series meet at the cutover 0.82: the alternating series,
	// summed to convergence just below it, agrees with the theta form.
	alt := func(l float64) float64 {
		s := 0.0
		for k := 1; k < 200; k++ {
			s += math.Pow(-1, float64(k-1)) * math.Exp(-2*float64(k*k)*l*l)
		}
		return 2 * s
	}
	for _, l := range []float64{0.6, 0.7, 0.8, 0.82, 0.83, 1.2} {
		assertRel(t, alt(l), KolmogorovQ(l), 1e-13, "λ=%v", l)
	}
	prev := 1.0
	for l := 0.01; l < 4; l += 0.01 {
		q := KolmogorovQ(l)
		assert.LessOrEqual(t, q, prev, "Q must not increase at λ=%v", l)
		prev = q
	}
}

// KSAsymptotic is KS's asymptotic branch: equal to KS where KS itself is
// asymptotic (above 10000 values), and to scipy's method="asymp" below.
func TestKSAsymptotic(t *testing.T) {
	ref, live := sampleRef(20000), sampleLive(15000, 0.02)
	d, p := KS(ref, live)
	ad, ap := KSAsymptotic(ref, live)
	assert.Equal(t, d, ad)
	assert.Equal(t, p, ap)
	// linspace(1,100,100) vs linspace(1,100,110)+20.1: scipy
	// ks_2samp(..., method="asymp").pvalue
	x, y := linspace(1, 100, 100), linspace(1, 100, 110)
	for i := range y {
		y[i] += 20.1
	}
	ad, ap = KSAsymptotic(x, y)
	assert.InDelta(t, 0.21090909090909091, ad, 1e-15)
	assertRel(t, ksAsymptoticP(100, 110, ad), ap, 0)
	ed, ep := KS(x, y)
	assert.Equal(t, ed, ad)
	assert.InDelta(t, ep, ap, 0.01, "exact 0.0157 and asymptotic close")
	assert.True(t, KSExactCheap(1000, 1000))
	assert.False(t, KSExactCheap(1000, 999))
	assert.True(t, KSExactCheap(300, 200))
	d, p = KSAsymptotic(nil, live)
	assert.Equal(t, 0.0, d)
	assert.Equal(t, 1.0, p)
}
