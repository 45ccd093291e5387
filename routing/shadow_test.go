package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShadowGetsNoWeightedTraffic: a shadow's configured weight is
// ignored: it has weight and share 0, weighted and sticky picks never
// choose it, and only an override reaches it.
func TestShadowGetsNoWeightedTraffic(t *testing.T) {
	s := ver("s1", 50)
	s.Shadow = true
	m := only(t, sticky(model("a", ver("v1", 1), s)))
	assert.Equal(t, 0.0, m.Versions[1].Weight)
	assert.Equal(t, 1, m.Shadows)
	assert.Zero(t, only(t, model("b", ver("v1", 1))).Shadows)
	assert.Equal(t, []float64{1, 0}, m.Shares())
	counts, _ := countCycles(t, m, 50)
	assert.Zero(t, counts["s1"])
	for _, user := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		v, err := m.Pick(nil, []byte(user))
		require.NoError(t, err)
		assert.Equal(t, "v1", v.Name)
	}
	v, err := m.Pick([]byte("s1"), nil)
	require.NoError(t, err)
	assert.Equal(t, "s1", v.Name)
}
