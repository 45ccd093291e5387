package decode

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// number's fast path must give strconv.ParseFloat's float64 bit for bit.
func TestShortNumberMatchesStrconv(t *testing.T) {
	fixed := []string{"0", "-0", "0.0", "-0.0", "1", "-1", "6.8", "2.8", "4.8", "1.4", "0.1", "0.2", "0.3",
		"123456789012345", "-123456789012345", "1234567890123456", "9007199254740993", "0.000001",
		"1e22", "1e23", "1e-22", "1e-23", "123.456e-5", "5E+3", "4.35e10", "0.1e1", "100e-2",
		"3.141592653589793", "2.718281828459045", "1.7976931348623157e308", "5e-324", "0.30000000000000004"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var b []byte
		if r.IntN(4) == 0 {
			b = append(b, '-')
		}
		b = strconv.AppendUint(b, r.Uint64N(1_000_000), 10)
		if r.IntN(3) > 0 {
			b = append(b, '.')
			for range 1 + r.IntN(12) {
				b = append(b, byte('0'+r.IntN(10)))
			}
		}
		if r.IntN(4) == 0 {
			b = append(b, "eE"[r.IntN(2)])
			if r.IntN(2) == 0 {
				b = append(b, "+-"[r.IntN(2)])
			}
			b = strconv.AppendInt(b, int64(r.IntN(30)), 10)
		}
		fixed = append(fixed, string(b))
	}
	fast := 0
	for _, s := range fixed {
		require.True(t, jsonValid([]byte(s)), s)
		want, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err, s)
		got, ok := number([]byte(s))
		require.True(t, ok, s)
		require.Equal(t, math.Float64bits(want), math.Float64bits(got), "%s: got %v want %v", s, got, want)
		if _, ok := shortNumber([]byte(s)); ok {
			fast++
		}
	}
	// Most of these take the fast path; the rest check the fallback.
	assert.Greater(t, fast, len(fixed)/2)
	assert.Less(t, fast, len(fixed))
}

func FuzzNumber(f *testing.F) {
	for _, s := range []string{"6.8", "-0", "1e22", "123456789012345", "0.000001e-16", "12.5E+3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !jsonValid([]byte(s)) || s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
			return // number only sees valid JSON numbers
		}
		want, err := strconv.ParseFloat(s, 64)
		got, ok := number([]byte(s))
		if err != nil || math.IsInf(want, 0) {
			if ok {
				t.Fatalf("%q: number accepted what strconv rejects (%v)", s, err)
			}
			return
		}
		if !ok || math.Float64bits(want) != math.Float64bits(got) {
			t.Fatalf("%q: got %v (%v), want %v", s, got, ok, want)
		}
	})
}

func BenchmarkNumber(b *testing.B) {
	in := [][]byte{[]byte("6.8"), []byte("2.8"), []byte("4.8"), []byte("1.4"), []byte("0.9123")}
	b.Run("number", func(b *testing.B) {
		for b.Loop() {
			for _, v := range in {
				_, _ = number(v)
			}
		}
	})
	b.Run("strconv", func(b *testing.B) {
		for b.Loop() {
			for _, v := range in {
				_, _ = strconv.ParseFloat(string(v), 64)
			}
		}
	})
}
