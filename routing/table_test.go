package routing

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

func TestBuildEndpoints(t *testing.T) {
	cfg := config(
		model("a", ver("v1", 1, "http://a1:1", "h2c://a1:2"), ver("v2", 1, "http://a2:1")),
		model("b", ver("v1", 1, "http://a1:1")), // same URL, other model: another endpoint
	)
	tbl := build(t, cfg, nil)
	eps := tbl.Endpoints()
	require.Len(t, eps, 4)
	for i, e := range eps {
		assert.Equal(t, i, e.ID)
		assert.True(t, e.Routable())
	}
	assert.Equal(t, Endpoint{ID: 1, URL: "h2c://a1:2", Scheme: "h2c", Addr: "a1:2", Model: "a", Version: "v1"},
		Endpoint{ID: eps[1].ID, URL: eps[1].URL, Scheme: eps[1].Scheme, Addr: eps[1].Addr, Model: eps[1].Model, Version: eps[1].Version})
	eps[0].Begin()
	assert.Zero(t, eps[3].InFlight(), "state is per (model, version, URL)")
	assert.Same(t, eps[3], tbl.Models()[1].Versions[0].Endpoints[0])
	for i, m := range tbl.Models() {
		assert.Equal(t, i, m.Index)
		assert.Same(t, &cfg.Models[i], m.Config)
		for j, v := range m.Versions {
			assert.Equal(t, j, v.Index)
			assert.Same(t, m, v.Model)
		}
	}
}

func TestBuildCarriesStateByKey(t *testing.T) {
	cfg1 := config(model("m", ver("v1", 90, "http://a:1", "http://b:1"), ver("v2", 10, "http://c:1")))
	t1 := build(t, cfg1, nil)
	a1, b1 := t1.Endpoints()[0], t1.Endpoints()[1]
	a1.Begin()
	a1.Begin()
	t1.SetRoutable(b1, false)

	// Weight-only change: state survives.
	cfg2 := config(model("m", ver("v1", 50, "http://a:1", "http://b:1"), ver("v2", 50, "http://c:1")))
	t2 := build(t, cfg2, t1)
	a2, b2 := t2.Endpoints()[0], t2.Endpoints()[1]
	assert.Equal(t, int64(2), a2.InFlight())
	assert.False(t, b2.Routable())
	assert.Equal(t, []float64{0.5, 0.5}, t2.Models()[0].Shares())
	for range 50 {
		assert.Same(t, a2, t2.Models()[0].Versions[0].PickEndpoint(rand.Uint64()), "b stays down in the new table")
	}
	a1.End() // a request begun on the old table ends there
	assert.Equal(t, int64(1), a2.InFlight())

	// Removed, then re-added: fresh state.
	cfg3 := config(model("m", ver("v1", 50, "http://a:1"), ver("v2", 50, "http://c:1")))
	t3 := build(t, cfg3, t2)
	assert.Equal(t, int64(1), t3.Endpoints()[0].InFlight())
	t4 := build(t, cfg2, t3)
	assert.True(t, t4.Endpoints()[1].Routable(), "re-added b starts routable")
	assert.Equal(t, "http://b:1", t4.Endpoints()[1].URL)

	// Moving an endpoint to another version is another key.
	cfg5 := config(model("m", ver("v1", 50, "http://b:1"), ver("v2", 50, "http://a:1")))
	t5 := build(t, cfg5, t4)
	assert.Zero(t, t5.Endpoints()[1].InFlight())
	assert.Zero(t, t5.Endpoints()[0].InFlight())
}

func TestBuildCarriesDownVersion(t *testing.T) {
	cfg := config(model("m", ver("v1", 5), ver("v2", 3), ver("v3", 2)))
	t1 := build(t, cfg, nil)
	setVersion(t, t1, t1.Models()[0], "v1", false)
	t2 := build(t, cfg, t1)
	assert.Equal(t, []float64{0, 0.6, 0.4}, t2.Models()[0].Shares())
	assert.False(t, t2.Models()[0].Versions[0].Routable())
}

func TestSetRoutableWithOldTablesEndpoint(t *testing.T) {
	cfg := config(model("m", ver("v1", 1), ver("v2", 1)))
	t1 := build(t, cfg, nil)
	t2 := build(t, cfg, t1)
	t2.SetRoutable(t1.Endpoints()[0], false)
	assert.Equal(t, []float64{0, 1}, t2.Models()[0].Shares())

	t3 := build(t, config(model("m", ver("v2", 1))), t2)
	t3.SetRoutable(t1.Endpoints()[0], true) // gone from t3: only the flag changes
	assert.True(t, t1.Endpoints()[0].Routable())
	assert.Equal(t, []float64{1}, t3.Models()[0].Shares())
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  *configs.Config
	}{
		{"nil config", nil},
		{"bad endpoint", config(model("m", ver("v1", 1, "https://x:1")))},
		{"all weights zero", config(model("m", ver("v1", 0)))},
		{"unknown fallback", config(withPolicy(model("m", ver("v1", 1)), configs.OnUnhealthyFallback, "v9"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl, err := Build(tt.cfg, nil)
			assert.Error(t, err)
			assert.Nil(t, tbl)
		})
	}
}

// TestConcurrentPickAndSetRoutable runs the request path against health
// flapping; run with -race.
func TestConcurrentPickAndSetRoutable(t *testing.T) {
	tbl := build(t, config(
		sticky(model("m", ver("v1", 70, "http://a:1", "http://b:1"), ver("v2", 30, "http://c:1", "http://d:1"))),
	), nil)
	m := tbl.Models()[0]
	v1 := m.Versions[0]
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				v, err := m.Pick(nil, userKey(g*1_000_000+i%1000))
				if err == nil && g%2 == 0 {
					v, err = m.Pick(nil, nil)
				}
				if err != nil {
					errs <- err
					return
				}
				e := v.PickEndpoint(rand.Uint64())
				if e == nil && v.Name == "v2" { // v2 never goes down
					errs <- assert.AnError
					return
				}
				if e != nil {
					e.Begin()
					e.End()
				}
				_ = m.Shares()
				_ = v.Routable()
			}
		})
	}
	for i := range 2000 {
		tbl.SetRoutable(v1.Endpoints[i%2], i%3 == 0)
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, e := range tbl.Endpoints() {
		assert.Zero(t, e.InFlight())
	}
}
