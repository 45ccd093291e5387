package stats

import "math"

// kstwoSF is P(D_n ≥ x) for the one-sample two-sided Kolmogorov–Smirnov
// statistic D_n with n observations: scipy.stats.kstwo.sf(x, n). The
// method for each (n, x) is Simard & L'Ecuyer's (2011) choice, with
// scipy's thresholds, so the numbers match scipy's to rounding.
func kstwoSF(n int, x float64) float64 {
	switch {
	case math.IsNaN(x) || n < 1:
		return math.NaN()
	case x >= 1:
		return 0
	case x <= 0:
		return 1
	}
	fn := float64(n)
	t := fn * x
	switch {
	case t <= 0.5:
		return 1
	case t <= 1:
		// Ruben–Gambino: P(D_n ≤ x) = n!/nⁿ·(2t−1)ⁿ for 1/2n ≤ x ≤ 1/n.
		return clip01(1 - rubenGambinoCDF(n, t))
	case t >= fn-1:
		// Ruben–Gambino upper end: P(D_n ≥ x) = 2(1−x)ⁿ.
		return clip01(2 * math.Pow(1-x, fn))
	case x >= 0.5:
		// D_n⁺ ≥ x and D_n⁻ ≥ x cannot both hold: twice the one-sided tail.
		return clip01(2 * smirnovSF(n, x))
	}
	nxx := t * x
	if n <= 140 {
		if nxx <= 4 {
			return clip01(1 - durbinCDF(n, x))
		}
		return clip01(2 * smirnovSF(n, x))
	}
	switch {
	case nxx >= 370:
		return 0
	case nxx >= 2.2:
		return clip01(2 * smirnovSF(n, x))
	case n <= 100000 && fn*math.Pow(x, 1.5) <= 1.4:
		return clip01(1 - durbinCDF(n, x))
	}
	return clip01(1 - pelzGoodCDF(n, x))
}

// rubenGambinoCDF is n!/nⁿ·(2t−1)ⁿ, t = n·x ∈ (1/2, 1].
func rubenGambinoCDF(n int, t float64) float64 {
	if n <= 140 {
		p := 1.0
		for i := 1; i <= n; i++ {
			p *= float64(i) / float64(n) * (2*t - 1)
		}
		return p
	}
	return math.Exp(logFactorialOverPower(n) + float64(n)*math.Log(2*t-1))
}

// logFactorialOverPower is log(n!/nⁿ) = stirlingG(n) − n.
func logFactorialOverPower(n int) float64 {
	return stirlingG(n) - float64(n)
}

// scaleUp and scaleDown keep intermediate values in range; the exponent
// is tracked separately and applied at the end.
const (
	scaleExp  = 128
	scaleUp   = 0x1p128
	scaleDown = 0x1p-128
)

// durbinCDF is P(D_n ≤ d) by Durbin's matrix formula in the
// Marsaglia–Tsang–Wang form: with d = (k−h)/n, the (k,k) entry of Hⁿ for
// an (2k−1)×(2k−1) matrix H, times n!/nⁿ. Cost O(k³·log n).
func durbinCDF(n int, d float64) float64 {
	nd := float64(n) * d
	if d >= 1 {
		return 1
	}
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1

	v := make([]float64, m) // first column: (1 − h^j)/j!
	w := make([]float64, m) // 1/j!, j = 0 … m−1
	fac, hp := 1.0, 1.0
	for j := 1; j <= m; j++ {
		w[j-1] = fac
		fac /= float64(j)
		hp *= h
		v[j-1] = (1 - hp) * fac
	}
	v[m-1] = (1 + math.Pow(math.Max(2*h-1, 0), float64(m)) - 2*hp) * fac

	hm := make([]float64, m*m)
	for c := 1; c < m; c++ {
		for r := c - 1; r < m; r++ {
			hm[r*m+c] = w[r-c+1]
		}
	}
	for r := 0; r < m; r++ {
		hm[r*m] = v[r]
	}
	for c := 0; c < m; c++ {
		hm[(m-1)*m+c] = v[m-1-c]
	}

	pw := make([]float64, m*m) // accumulated power, starts as identity
	for i := 0; i < m; i++ {
		pw[i*m+i] = 1
	}
	tmp := make([]float64, m*m)
	kk := (k-1)*m + k - 1
	pwExp, hExp := 0, 0
	for nn := n; nn > 0; nn >>= 1 {
		if nn&1 == 1 {
			matMul(tmp, pw, hm, m)
			pw, tmp = tmp, pw
			pwExp += hExp
			// scipy rescales only H; rescaling the product too changes
			// no digit and keeps it finite whatever n is.
			if math.Abs(pw[kk]) > scaleUp {
				scale(pw, scaleDown)
				pwExp += scaleExp
			}
		}
		if nn > 1 {
			matMul(tmp, hm, hm, m)
			hm, tmp = tmp, hm
			hExp *= 2
			if math.Abs(hm[kk]) > scaleUp {
				scale(hm, scaleDown)
				hExp += scaleExp
			}
		}
	}
	p := pw[kk]
	for i := 1; i <= n; i++ { // multiply by n!/nⁿ
		p = float64(i) * p / float64(n)
		if math.Abs(p) < scaleDown {
			p *= scaleUp
			pwExp -= scaleExp
		}
	}
	return clip01(math.Ldexp(p, pwExp))
}

// matMul sets dst = a·b for m×m row-major matrices.
func matMul(dst, a, b []float64, m int) {
	clear(dst)
	for i := 0; i < m; i++ {
		row := dst[i*m : i*m+m]
		for l := 0; l < m; l++ {
			ail := a[i*m+l]
			if ail == 0 {
				continue
			}
			for j, blj := range b[l*m : l*m+m] {
				row[j] += ail * blj
			}
		}
	}
}

func scale(a []float64, f float64) {
	for i := range a {
		a[i] *= f
	}
}

// pelzGoodCDF is the Pelz–Good (1976) approximation of P(D_n ≤ x): the
// Li-Chien/Korolyuk expansion K0 + K1/√n + K2/n + K3/n^1.5 rewritten with
// Jacobi theta identities so that it converges for small z = √n·x.
func pelzGoodCDF(n int, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	const pi2 = math.Pi * math.Pi
	const pi4, pi6 = pi2 * pi2, pi2 * pi2 * pi2
	z := math.Sqrt(float64(n)) * x
	z2 := z * z
	z3, z4, z6 := z2*z, z2*z2, z2*z2*z2
	qlog := -pi2 / 8 / z2
	if qlog < -708 {
		return 0
	}
	q := math.Exp(qlog)

	// Coefficients, as polynomials in m = 2k−1, of q^(m²) in K0 … K3.
	k1a, k1b := -z2, pi2/4
	k2a, k2b, k2c := 6*z6+2*z4, (2*z4-5*z2)*pi2/4, pi4*(1-2*z2)/16
	k3a := -30*z6 - 90*z4*z4
	k3b := pi2 * (135*z4 - 96*z6) / 4
	k3c := pi4 * (-60*z2 + 212*z4) / 16
	k3d := pi6 * (5 - 30*z2) / 64

	var s [4]float64
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k >= 1; k-- { // Horner in q^(8k): Σ c_m q^(m²−1)
		m := float64(2*k - 1)
		m2 := m * m
		qp := math.Pow(q, float64(8*k))
		s[0] = s[0]*qp + 1
		s[1] = s[1]*qp + k1a + k1b*m2
		s[2] = s[2]*qp + k2a + k2b*m2 + k2c*m2*m2
		s[3] = s[3]*qp + k3a + k3b*m2 + k3c*m2*m2 + k3d*m2*m2*m2
	}
	c := q * math.Sqrt(2*math.Pi)
	s[0] *= c / z
	s[1] *= c / (6 * z4)
	s[2] *= c / (72 * z6 * z)
	s[3] *= c / (6480 * z6 * z4)

	// Terms over all integers k in K2 and K3, in q' = exp(−π²/(2z²)).
	qq := math.Exp(-pi2 / 2 / z2)
	var e2, e3 float64
	for k := maxk; k >= 1; k-- {
		fk := float64(k)
		t := fk * fk * math.Pow(qq, fk*fk)
		e2 += t
		e3 += (math.Sqrt(3)*z + math.Pi*fk) * (math.Sqrt(3)*z - math.Pi*fk) * t
	}
	s[2] += e2 * pi2 * math.Sqrt(2*math.Pi) / (-36 * z3)
	s[3] += e3 * pi2 * math.Sqrt(2*math.Pi) / (216 * z6)

	rn := math.Sqrt(float64(n))
	return s[0] + s[1]/rn + s[2]/float64(n) + s[3]/(float64(n)*rn)
}
