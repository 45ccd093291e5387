package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vaneproxy/vane/configs"
)

func TestFailover(t *testing.T) {
	bit := func(m *Model, names ...string) uint64 {
		var b uint64
		for _, n := range names {
			b |= 1 << uint(m.Version([]byte(n)).Index)
		}
		return b
	}
	t.Run("redistribute draws among the others by weight", func(t *testing.T) {
		m := build(t, config(fiveThreeTwo(configs.OnUnhealthyRedistribute, "")), nil).Models()[0]
		v1 := m.Versions[0]
		// v2 and v3 weigh 3 and 2: v2 below 0.6 of the draw, v3 above.
		assert.Equal(t, "v2", m.Failover(v1, bit(m, "v1"), 0).Name)
		assert.Equal(t, "v2", m.Failover(v1, bit(m, "v1"), 0.59).Name)
		assert.Equal(t, "v3", m.Failover(v1, bit(m, "v1"), 0.61).Name)
		assert.Equal(t, "v3", m.Failover(v1, bit(m, "v1", "v2"), 0).Name, "a tried version is skipped")
		assert.Nil(t, m.Failover(v1, bit(m, "v1", "v2", "v3"), 0), "all tried")
	})
	t.Run("redistribute skips a version that is down", func(t *testing.T) {
		tbl := build(t, config(fiveThreeTwo(configs.OnUnhealthyRedistribute, "")), nil)
		m := tbl.Models()[0]
		setVersion(t, tbl, m, "v2", false)
		assert.Equal(t, "v3", m.Failover(m.Versions[0], bit(m, "v1"), 0).Name)
	})
	t.Run("fallback goes to the fallback only", func(t *testing.T) {
		tbl := build(t, config(fiveThreeTwo(configs.OnUnhealthyFallback, "v3")), nil)
		m := tbl.Models()[0]
		assert.Equal(t, "v3", m.Failover(m.Versions[0], bit(m, "v1"), 0).Name)
		assert.Nil(t, m.Failover(m.Versions[2], bit(m, "v3"), 0), "the fallback has nowhere to go")
		setVersion(t, tbl, m, "v3", false)
		assert.Nil(t, m.Failover(m.Versions[0], bit(m, "v1"), 0), "a down fallback")
	})
	t.Run("fail moves nowhere", func(t *testing.T) {
		m := build(t, config(fiveThreeTwo(configs.OnUnhealthyFail, "")), nil).Models()[0]
		assert.Nil(t, m.Failover(m.Versions[0], bit(m, "v1"), 0.5))
	})
	t.Run("weight 0 versions take no redistributed traffic", func(t *testing.T) {
		m := build(t, config(model("m", ver("v1", 1), ver("dark", 0))), nil).Models()[0]
		assert.Nil(t, m.Failover(m.Versions[0], bit(m, "v1"), 0))
	})
}
