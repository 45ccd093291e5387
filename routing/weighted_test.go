package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

func TestQuantise(t *testing.T) {
	tests := []struct {
		name    string
		weights []float64
		want    []int
	}{
		{"80/20", []float64{80, 20}, []int{8000, 2000}},
		{"fractions of one", []float64{0.8, 0.2}, []int{8000, 2000}},
		{"thirds: largest remainder, ties to the first", []float64{1, 1, 1}, []int{3334, 3333, 3333}},
		{"99.99/0.01", []float64{99.99, 0.01}, []int{9999, 1}},
		{"zero weight gets nothing", []float64{0, 70, 30}, []int{0, 7000, 3000}},
		{"tiny weight keeps one slot", []float64{1e6, 1e-3}, []int{9999, 1}},
		{"two tiny weights take from the largest", []float64{1e6, 1e-3, 1e-3}, []int{9998, 1, 1}},
		{"remainders", []float64{1, 2, 4}, []int{1429, 2857, 5714}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := quantise(tt.weights)
			require.True(t, ok)
			assert.Equal(t, tt.want, got)
			sum := 0
			for _, q := range got {
				sum += q
			}
			assert.Equal(t, slotsTotal, sum)
		})
	}
	_, ok := quantise([]float64{0, 0})
	assert.False(t, ok, "all-zero weights")
}

func TestWeightedSharesExactOverCycles(t *testing.T) {
	tests := []struct {
		name     string
		versions []configs.Version
		cycleLen int
		want     map[string]int // picks per version in one cycle
	}{
		{"80/20", []configs.Version{ver("v1", 80), ver("v2", 20)}, 5, map[string]int{"v1": 4, "v2": 1}},
		{"90/10", []configs.Version{ver("v1", 90), ver("v2", 10)}, 10, map[string]int{"v1": 9, "v2": 1}},
		{"3 versions 50/30/20", []configs.Version{ver("a", 50), ver("b", 30), ver("c", 20)}, 10,
			map[string]int{"a": 5, "b": 3, "c": 2}},
		{"3 equal versions", []configs.Version{ver("a", 1), ver("b", 1), ver("c", 1)}, 10000,
			map[string]int{"a": 3334, "b": 3333, "c": 3333}},
		{"99.99/0.01", []configs.Version{ver("stable", 99.99), ver("canary", 0.01)}, 10000,
			map[string]int{"stable": 9999, "canary": 1}},
		{"weight 0 never picked", []configs.Version{ver("off", 0), ver("v1", 70), ver("v2", 30), ver("off2", 0)}, 10,
			map[string]int{"v1": 7, "v2": 3}},
		{"single version", []configs.Version{ver("only", 3.5)}, 1, map[string]int{"only": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := only(t, model("m", tt.versions...))
			require.Len(t, m.state.Load().cycle, tt.cycleLen)
			// Start mid-cycle: any cycleLen consecutive picks are exact.
			for range tt.cycleLen / 3 {
				_, err := m.Pick(nil, nil)
				require.NoError(t, err)
			}
			const cycles = 3
			got, _ := countCycles(t, m, cycles)
			want := map[string]int{}
			for k, n := range tt.want {
				want[k] = n * cycles
			}
			assert.Equal(t, want, got)

			shares := m.Shares()
			for i, v := range m.Versions {
				assert.InDelta(t, float64(tt.want[v.Name])/float64(tt.cycleLen), shares[i], 1e-12, v.Name)
			}
		})
	}
}

func TestWeightedSmooth(t *testing.T) {
	tests := []struct {
		name    string
		weights [2]float64
		maxRun  [2]int // longest run of each version, across cycle ends
	}{
		{"80/20", [2]float64{80, 20}, [2]int{4, 1}},
		{"90/10", [2]float64{90, 10}, [2]int{9, 1}},
		{"50/50", [2]float64{50, 50}, [2]int{1, 1}},
		{"60/40", [2]float64{60, 40}, [2]int{2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := only(t, model("m", ver("v1", tt.weights[0]), ver("v2", tt.weights[1])))
			longest := [2]int{}
			prev, run := -1, 0
			for range 1000 {
				v, err := m.Pick(nil, nil)
				require.NoError(t, err)
				if v.Index == prev {
					run++
				} else {
					prev, run = v.Index, 1
				}
				longest[v.Index] = max(longest[v.Index], run)
			}
			assert.Equal(t, tt.maxRun, longest)
		})
	}
}

func TestSWRRCycle(t *testing.T) {
	assert.Equal(t, []int{0, 0, 1, 0, 0}, swrrCycle([]int{0, 1}, []int{8000, 2000}))
	assert.Equal(t, []int{0, 1, 0, 2, 1, 0}, swrrCycle([]int{0, 1, 2}, []int{3, 2, 1}))
	assert.Equal(t, []int{7, failSlot}, swrrCycle([]int{7, failSlot}, []int{500, 500}))
	assert.Empty(t, swrrCycle([]int{0}, []int{0}))
}

func TestOverride(t *testing.T) {
	m := only(t, sticky(model("m", ver("v1", 100), ver("v2", 0))))
	tests := []struct {
		name     string
		override string
		want     string
		err      error
	}{
		{"known", "v1", "v1", nil},
		{"weight 0 version is reachable by override", "v2", "v2", nil},
		{"unknown", "v3", "", ErrUnknownVersion},
		{"case matters", "V1", "", ErrUnknownVersion},
		{"empty means no override", "", "v1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 {
				v, err := m.Pick([]byte(tt.override), []byte("user-1"))
				if tt.err != nil {
					assert.ErrorIs(t, err, tt.err)
					assert.Nil(t, v)
					continue
				}
				require.NoError(t, err)
				assert.Equal(t, tt.want, v.Name)
			}
		})
	}
}

func TestVersionLookup(t *testing.T) {
	m := only(t, model("m", ver("v1", 1), ver("v2", 1)))
	assert.Same(t, m.Versions[1], m.Version([]byte("v2")))
	assert.Nil(t, m.Version([]byte("v9")))
	assert.Nil(t, m.Version(nil))
}
