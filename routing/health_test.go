package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

func fiveThreeTwo(policy, fallback string) configs.Model {
	return withPolicy(sticky(model("m", ver("v1", 5), ver("v2", 3), ver("v3", 2))), policy, fallback)
}

func TestOnUnhealthyShares(t *testing.T) {
	tests := []struct {
		name   string
		model  configs.Model
		down   []string
		shares []float64      // exact
		picks  map[string]int // per weighted cycle
		cycle  int            // cycle length
	}{
		{"all up", fiveThreeTwo(configs.OnUnhealthyRedistribute, ""), nil,
			[]float64{0.5, 0.3, 0.2}, map[string]int{"v1": 5, "v2": 3, "v3": 2}, 10},
		{"redistribute", fiveThreeTwo(configs.OnUnhealthyRedistribute, ""), []string{"v1"},
			[]float64{0, 0.6, 0.4}, map[string]int{"v2": 3, "v3": 2}, 5},
		{"redistribute two down", fiveThreeTwo(configs.OnUnhealthyRedistribute, ""), []string{"v1", "v3"},
			[]float64{0, 1, 0}, map[string]int{"v2": 1}, 1},
		{"fallback", fiveThreeTwo(configs.OnUnhealthyFallback, "v3"), []string{"v1"},
			[]float64{0, 0.3, 0.7}, map[string]int{"v2": 3, "v3": 7}, 10},
		{"fallback itself down redistributes", fiveThreeTwo(configs.OnUnhealthyFallback, "v3"), []string{"v1", "v3"},
			[]float64{0, 1, 0}, map[string]int{"v2": 1}, 1},
		{"fallback down alone redistributes", fiveThreeTwo(configs.OnUnhealthyFallback, "v3"), []string{"v3"},
			[]float64{0.625, 0.375, 0}, map[string]int{"v1": 5, "v2": 3}, 8},
		{"fallback with weight 0 is a standby",
			withPolicy(model("m", ver("v1", 100), ver("standby", 0)), configs.OnUnhealthyFallback, "standby"),
			[]string{"v1"}, []float64{0, 1}, map[string]int{"standby": 1}, 1},
		{"fail", fiveThreeTwo(configs.OnUnhealthyFail, ""), []string{"v1"},
			[]float64{0, 0.3, 0.2}, map[string]int{"v2": 3, "v3": 2, "error": 5}, 10},
		{"fail with 1/3 down", withPolicy(model("m", ver("a", 1), ver("b", 1), ver("c", 1)), configs.OnUnhealthyFail, ""),
			[]string{"b"}, []float64{0.3334, 0, 0.3333}, map[string]int{"a": 3334, "c": 3333, "error": 3333}, 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl := build(t, config(tt.model), nil)
			m := tbl.Models()[0]
			for _, name := range tt.down {
				setVersion(t, tbl, m, name, false)
				assert.False(t, m.Version([]byte(name)).Routable())
			}
			assert.Equal(t, tt.shares, m.Shares())
			require.Len(t, m.state.Load().cycle, tt.cycle)
			got, _ := countCycles(t, m, 2)
			want := map[string]int{}
			for k, n := range tt.picks {
				want[k] = 2 * n
			}
			assert.Equal(t, want, got)

			// Recovery restores the configured shares.
			for _, name := range tt.down {
				setVersion(t, tbl, m, name, true)
			}
			fresh := build(t, config(tt.model), nil).Models()[0]
			assert.Equal(t, fresh.Shares(), m.Shares())
		})
	}
}

func TestAllDown(t *testing.T) {
	for _, policy := range []string{configs.OnUnhealthyRedistribute, configs.OnUnhealthyFallback, configs.OnUnhealthyFail} {
		t.Run(policy, func(t *testing.T) {
			tbl := build(t, config(fiveThreeTwo(policy, "v2")), nil)
			m := tbl.Models()[0]
			for _, v := range m.Versions {
				setVersion(t, tbl, m, v.Name, false)
			}
			for _, key := range [][]byte{nil, []byte("user-1")} {
				v, err := m.Pick(nil, key)
				assert.ErrorIs(t, err, ErrNoRoutableVersion)
				assert.Nil(t, v)
			}
			assert.Equal(t, []float64{0, 0, 0}, m.Shares())
			v, err := m.Pick([]byte("v1"), nil)
			require.NoError(t, err, "an override pins a down version")
			assert.Equal(t, "v1", v.Name)
			assert.Nil(t, v.PickEndpoint(1), "and finds no endpoint")
		})
	}
}

func TestOnlyWeightZeroVersionUp(t *testing.T) {
	tbl := build(t, config(model("m", ver("v1", 1), ver("dark", 0))), nil)
	m := tbl.Models()[0]
	setVersion(t, tbl, m, "v1", false)
	_, err := m.Pick(nil, nil)
	assert.ErrorIs(t, err, ErrNoRoutableVersion, "weight 0 takes no weighted traffic")
	v, err := m.Pick([]byte("dark"), nil)
	require.NoError(t, err)
	assert.Equal(t, "dark", v.Name)
}

func TestOneEndpointDownKeepsVersion(t *testing.T) {
	tbl := build(t, config(model("m", ver("v1", 50, "http://a:1", "http://b:1"), ver("v2", 50))), nil)
	m := tbl.Models()[0]
	tbl.SetRoutable(m.Versions[0].Endpoints[0], false)
	assert.True(t, m.Versions[0].Routable())
	assert.Equal(t, []float64{0.5, 0.5}, m.Shares())
	tbl.SetRoutable(m.Versions[0].Endpoints[1], false)
	assert.False(t, m.Versions[0].Routable())
	assert.Equal(t, []float64{0, 1}, m.Shares())
}

func TestStickyFallbackDownToo(t *testing.T) {
	tbl := build(t, config(fiveThreeTwo(configs.OnUnhealthyFallback, "v3")), nil)
	m := tbl.Models()[0]
	setVersion(t, tbl, m, "v1", false)
	setVersion(t, tbl, m, "v3", false)
	for u := range 500 {
		assert.Equal(t, "v2", stickyPick(t, m, userKey(u)), "only v2 is up")
	}
}

func TestStickyUsersOfDownVersion(t *testing.T) {
	tests := []struct {
		policy, fallback string
		wantMoved        func(t *testing.T, v *Version, err error)
	}{
		{configs.OnUnhealthyRedistribute, "", func(t *testing.T, v *Version, err error) {
			require.NoError(t, err)
			assert.NotEqual(t, "v1", v.Name)
		}},
		{configs.OnUnhealthyFallback, "v3", func(t *testing.T, v *Version, err error) {
			require.NoError(t, err)
			assert.Equal(t, "v3", v.Name)
		}},
		{configs.OnUnhealthyFail, "", func(t *testing.T, _ *Version, err error) {
			assert.ErrorIs(t, err, ErrNoRoutableVersion)
		}},
	}
	const users = 3000
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			tbl := build(t, config(fiveThreeTwo(tt.policy, tt.fallback)), nil)
			m := tbl.Models()[0]
			before := make([]string, users)
			for u := range before {
				before[u] = stickyPick(t, m, userKey(u))
			}
			setVersion(t, tbl, m, "v1", false)
			onV1, redistributed := 0, map[string]int{}
			for u, was := range before {
				v, err := m.Pick(nil, userKey(u))
				if was != "v1" {
					require.NoError(t, err)
					assert.Equal(t, was, v.Name, "user %d of an up version stays", u)
					continue
				}
				onV1++
				tt.wantMoved(t, v, err)
				if v != nil {
					redistributed[v.Name]++
				}
			}
			require.Greater(t, onV1, users/3)
			if tt.policy == configs.OnUnhealthyRedistribute {
				// Movers spread over v2 and v3 by weight (3:2).
				assert.InDelta(t, 0.6, float64(redistributed["v2"])/float64(onV1), 0.05)
			}
			setVersion(t, tbl, m, "v1", true)
			for u, was := range before {
				assert.Equal(t, was, stickyPick(t, m, userKey(u)), "user %d after recovery", u)
			}
		})
	}
}
