package stats

import "math"

// Moments accumulates the count, mean and second and fourth central
// moments of a stream of values in one pass (Welford; Pébay's update for
// the fourth moment), and merges with another accumulator exactly, so
// that a reference holds exact moments of every row it saw while keeping
// only a bounded sample of the values. The zero value is empty.
type Moments struct {
	N    float64
	Mean float64
	M2   float64 // Σ (x − mean)²
	M3   float64 // Σ (x − mean)³
	M4   float64 // Σ (x − mean)⁴
}

// Add takes one value.
func (m *Moments) Add(x float64) {
	n1 := m.N
	m.N++
	n := m.N
	delta := x - m.Mean
	dn := delta / n
	dn2 := dn * dn
	t1 := delta * dn * n1
	m.Mean += dn
	m.M4 += t1*dn2*(n*n-3*n+3) + 6*dn2*m.M2 - 4*dn*m.M3
	m.M3 += t1*dn*(n-2) - 3*dn*m.M2
	m.M2 += t1
}

// Merge adds the values that o accumulated.
func (m *Moments) Merge(o Moments) {
	if o.N == 0 {
		return
	}
	if m.N == 0 {
		*m = o
		return
	}
	na, nb := m.N, o.N
	n := na + nb
	d := o.Mean - m.Mean
	d2, d3, d4 := d*d, d*d*d, d*d*d*d
	m4 := m.M4 + o.M4 + d4*na*nb*(na*na-na*nb+nb*nb)/(n*n*n) +
		6*d2*(na*na*o.M2+nb*nb*m.M2)/(n*n) + 4*d*(na*o.M3-nb*m.M3)/n
	m3 := m.M3 + o.M3 + d3*na*nb*(na-nb)/(n*n) + 3*d*(na*o.M2-nb*m.M2)/n
	m.M2 += o.M2 + d2*na*nb/n
	m.M3, m.M4 = m3, m4
	m.Mean += d * nb / n
	m.N = n
}

// Variance is the sample variance (ddof 1); 0 below two values.
func (m *Moments) Variance() float64 {
	if m.N < 2 {
		return 0
	}
	return m.M2 / (m.N - 1)
}

// Kurtosis is the (non-excess) kurtosis m4/m2², 3 for a normal
// distribution; NaN when the variance is 0.
func (m *Moments) Kurtosis() float64 {
	if m.M2 == 0 {
		return math.NaN()
	}
	return m.N * m.M4 / (m.M2 * m.M2)
}
