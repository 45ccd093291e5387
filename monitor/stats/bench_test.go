package stats

import (
	"testing"
)

// The product scenario: reference 1000, window 500, sorted once by the
// caller. "no drift" is the common case (narrow band, cheap lattice walk);
// "drift" widens the band and is the exact branch's worst realistic cost.
func BenchmarkKS(b *testing.B) {
	cases := []struct {
		name   string
		n1, n2 int
		shift  float64
	}{
		{"1000v500/no_drift", 1000, 500, 0},
		{"1000v500/drift", 1000, 500, 0.1},
		{"1000v500/heavy_drift", 1000, 500, 0.3},
		{"1000v499/coprime", 1000, 499, 0.03},
		{"20000v20000/asymptotic", 20000, 20000, 0.01},
	}
	for _, c := range cases {
		ref, live := sampleRef(c.n1), sampleLive(c.n2, c.shift)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				KS(ref, live)
			}
		})
	}
}

func BenchmarkPSI(b *testing.B) {
	ref := Proportions([]float64{100, 98, 102, 99, 101, 100, 97, 103, 100, 100})
	live := Proportions([]float64{40, 55, 50, 45, 52, 48, 60, 50, 50, 50})
	b.ReportAllocs()
	for b.Loop() {
		PSI(ref, live)
	}
}

func BenchmarkJS(b *testing.B) {
	ref := []float64{100, 98, 102, 99, 101, 100, 97, 103, 100, 100}
	live := []float64{40, 55, 50, 45, 52, 48, 60, 50, 50, 50}
	b.ReportAllocs()
	for b.Loop() {
		JS(ref, live)
	}
}

func BenchmarkChi2(b *testing.B) {
	ref := []float64{100, 98, 102, 99, 101, 100, 97, 103, 100, 100}
	live := []float64{40, 55, 50, 45, 52, 48, 60, 50, 50, 0}
	b.ReportAllocs()
	for b.Loop() {
		Chi2(ref, live)
	}
}

func BenchmarkWasserstein(b *testing.B) {
	ref, live := sampleRef(1000), sampleLive(500, 0.05)
	b.ReportAllocs()
	for b.Loop() {
		Wasserstein(ref, live)
	}
}
