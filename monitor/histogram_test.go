package monitor

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

func sumOf(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}

// TestHistogramNumeric: the report's histogram holds the reference's
// bins and the open window binned with them; a window shifted by three
// standard deviations puts nearly all its mass in the last bin.
func TestHistogramNumeric(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 100, Reference: configs.Reference{Warmup: 200}, Features: []string{"x"}}
	require.NoError(t, f.m.Configure(config(model("iris", mon, "v1"))))
	rng := rand.New(rand.NewPCG(3, 3))
	f.feedRows("iris", "v1", normals(rng, 200, 1))
	h := featureOf(t, f.version(t, "iris", "v1"), "x").Histogram
	require.NotNil(t, h, "a reference exists: a histogram is reported")
	assert.Len(t, h.Reference, len(h.Edges)+1)
	assert.InDelta(t, 1, sumOf(h.Reference), 1e-9)
	assert.Equal(t, 0, h.WindowCount)
	assert.Zero(t, sumOf(h.Window), "an empty window is all zeros")

	f.feedRows("iris", "v1", normals(rng, 40, 1, 3))
	h = featureOf(t, f.version(t, "iris", "v1"), "x").Histogram
	require.NotNil(t, h)
	assert.Equal(t, 40, h.WindowCount)
	require.Len(t, h.Window, len(h.Edges)+1)
	assert.InDelta(t, 1, sumOf(h.Window), 1e-9)
	assert.Greater(t, h.Window[len(h.Window)-1], 0.8, "shifted values land in the top bin")
	assert.InDelta(t, 1.0/float64(len(h.Reference)), h.Reference[0], 0.05, "quantile bins hold equal shares")
	require.NotNil(t, h.Low)
	require.NotNil(t, h.High)
	assert.Less(t, *h.Low, h.Edges[0])
	assert.Greater(t, *h.High, 3.0, "High covers the window's shifted values")
}

func TestHistogramCategorical(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 100, Reference: configs.Reference{Warmup: 100}}
	require.NoError(t, f.m.Configure(config(model("shop", mon, "v1"))))
	feed := func(c string, n int) {
		for range n {
			f.feed("shop", "v1", fmt.Sprintf(`{"instances":[{"color":%q}]}`, c), `{"predictions":["yes"]}`)
		}
	}
	for range 25 { // interleaved: a warmup whose halves differ is refused
		feed("red", 3)
		feed("blue", 1)
	}
	feed("red", 10)
	feed("purple", 30)
	h := featureOf(t, f.version(t, "shop", "v1"), "color").Histogram
	require.NotNil(t, h)
	assert.Empty(t, h.Edges)
	assert.Equal(t, []string{"blue", "red", "purple"}, h.Categories, "the reference's categories, then the window's new ones")
	assert.InDeltaSlice(t, []float64{0.25, 0.75, 0}, h.Reference, 1e-9)
	assert.InDeltaSlice(t, []float64{0, 0.25, 0.75}, h.Window, 1e-9)
	assert.Equal(t, 40, h.WindowCount)
}
