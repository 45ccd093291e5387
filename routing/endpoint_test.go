package routing

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		raw, scheme, addr string
		err               bool
	}{
		{raw: "http://127.0.0.1:8501", scheme: "http", addr: "127.0.0.1:8501"},
		{raw: "h2c://triton:8001", scheme: "h2c", addr: "triton:8001"},
		{raw: "HTTP://host:1/ignored/path", scheme: "http", addr: "host:1"},
		{raw: "http://host", scheme: "http", addr: "host:80"},
		{raw: "http://[::1]:9000", scheme: "http", addr: "[::1]:9000"},
		{raw: "http://[::1]", scheme: "http", addr: "[::1]:80"},
		{raw: "https://host:443", err: true},
		{raw: "host:8000", err: true},
		{raw: "http://", err: true},
		{raw: "http://user@host:1", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			scheme, addr, err := parseEndpoint(tt.raw)
			if tt.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.scheme, scheme)
			assert.Equal(t, tt.addr, addr)
		})
	}
}

func threeEndpoints(t *testing.T) (*Table, *Version) {
	t.Helper()
	tbl := build(t, config(model("m", ver("v1", 1, "http://a:1", "http://b:1", "h2c://c:1"))), nil)
	return tbl, tbl.Models()[0].Versions[0]
}

func TestBeginEnd(t *testing.T) {
	_, v := threeEndpoints(t)
	e := v.Endpoints[0]
	e.Begin()
	e.Begin()
	assert.Equal(t, int64(2), e.InFlight())
	e.End()
	assert.Equal(t, int64(1), e.InFlight())
	assert.Equal(t, int64(0), v.Endpoints[1].InFlight())
}

// pickCounts calls PickEndpoint n times with seeded random values.
func pickCounts(v *Version, n int) map[string]int {
	rnd := rand.New(rand.NewPCG(1, 2))
	got := map[string]int{}
	for range n {
		if e := v.PickEndpoint(rnd.Uint64()); e != nil {
			got[e.URL]++
		} else {
			got["nil"]++
		}
	}
	return got
}

func TestPickEndpoint(t *testing.T) {
	t.Run("equal load spreads evenly", func(t *testing.T) {
		_, v := threeEndpoints(t)
		got := pickCounts(v, 30000)
		require.Len(t, got, 3)
		for url, n := range got {
			assert.InDelta(t, 10000, n, 500, url)
		}
	})
	t.Run("prefers fewer in flight", func(t *testing.T) {
		_, v := threeEndpoints(t)
		for range 5 {
			v.Endpoints[1].Begin()
		}
		for range 10 {
			v.Endpoints[2].Begin()
		}
		got := pickCounts(v, 30000)
		assert.Zero(t, got["h2c://c:1"], "the busiest never wins a pair")
		// a wins both pairs it is in (2/3), b wins its pair with c (1/3).
		assert.InDelta(t, 20000, got["http://a:1"], 600)
		assert.InDelta(t, 10000, got["http://b:1"], 600)
	})
	t.Run("two endpoints: always the idler", func(t *testing.T) {
		tbl := build(t, config(model("m", ver("v1", 1, "http://a:1", "http://b:1"))), nil)
		v := tbl.Models()[0].Versions[0]
		v.Endpoints[0].Begin()
		assert.Equal(t, map[string]int{"http://b:1": 1000}, pickCounts(v, 1000))
	})
	t.Run("skips non-routable", func(t *testing.T) {
		tbl, v := threeEndpoints(t)
		tbl.SetRoutable(v.Endpoints[0], false)
		got := pickCounts(v, 3000)
		assert.Zero(t, got["http://a:1"])
		assert.Equal(t, 3000, got["http://b:1"]+got["h2c://c:1"])
		tbl.SetRoutable(v.Endpoints[2], false)
		assert.Equal(t, map[string]int{"http://b:1": 100}, pickCounts(v, 100), "one left")
		tbl.SetRoutable(v.Endpoints[1], false)
		assert.Equal(t, map[string]int{"nil": 10}, pickCounts(v, 10), "none left")
		tbl.SetRoutable(v.Endpoints[0], true)
		assert.Equal(t, map[string]int{"http://a:1": 10}, pickCounts(v, 10), "back")
	})
	t.Run("extreme random values stay in range", func(t *testing.T) {
		_, v := threeEndpoints(t)
		for _, r := range []uint64{0, 1, 1 << 32, ^uint64(0), 0xffffffff, 0xffffffff00000000} {
			assert.NotNil(t, v.PickEndpoint(r))
		}
	})
}
