package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// TestStickyHashIsStable pins the hash (values cross-checked with an
// independent FNV-1a + splitmix64 implementation): a change here moves users between
// versions on upgrade, and replicas on different vane versions disagree.
func TestStickyHashIsStable(t *testing.T) {
	assert.Equal(t, uint64(0xc499b5f8a721df58), stickyHash([]byte("user-1")))
	assert.Equal(t, uint64(0xf52a15e9a9b5e89b), stickyHash(nil))
	assert.Equal(t, uint64(0x3c01dc6891611860), versionSeed("v1"))
	// The same bytes hash the same as a key and as a name.
	assert.Equal(t, stickyHash([]byte("canary")), versionSeed("canary"))
}

func TestStickyUsersStay(t *testing.T) {
	cfg := config(sticky(model("m", ver("v1", 50), ver("v2", 30), ver("v3", 20))))
	m := build(t, cfg, nil).Models()[0]
	other := build(t, cfg, nil).Models()[0] // another process, same config
	first := make([]string, 600)
	for u := range first {
		first[u] = stickyPick(t, m, userKey(u))
	}
	for round := range 5 {
		for u := range first {
			require.Equal(t, first[u], stickyPick(t, m, userKey(u)), "round %d user %d", round, u)
			require.Equal(t, first[u], stickyPick(t, other, userKey(u)), "user %d in another table", u)
			_, err := m.Pick(nil, nil) // weighted picks in between change nothing
			require.NoError(t, err)
		}
	}
	seen := map[string]bool{}
	for _, v := range first {
		seen[v] = true
	}
	assert.Len(t, seen, 3, "600 users spread over every version")
}

func TestStickyShares(t *testing.T) {
	tests := []struct {
		name     string
		versions []configs.Version
		want     map[string]float64
	}{
		{"80/20", []configs.Version{ver("v1", 80), ver("v2", 20)}, map[string]float64{"v1": 0.8, "v2": 0.2}},
		{"50/30/20", []configs.Version{ver("a", 50), ver("b", 30), ver("c", 20)},
			map[string]float64{"a": 0.5, "b": 0.3, "c": 0.2}},
		{"weight 0 never picked", []configs.Version{ver("off", 0), ver("on", 1)}, map[string]float64{"on": 1}},
	}
	const users = 100_000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := only(t, sticky(model("m", tt.versions...)))
			counts := map[string]int{}
			for u := range users {
				counts[stickyPick(t, m, userKey(u))]++
			}
			for name := range counts {
				assert.Contains(t, tt.want, name)
			}
			for name, share := range tt.want {
				assert.InDelta(t, share, float64(counts[name])/users, 0.01, name)
			}
		})
	}
}

// moves assigns users under two configs and returns who moved where.
func moves(t *testing.T, before, after configs.Model, users int) (moved map[[2]string]int, stayed int) {
	t.Helper()
	t1 := build(t, config(before), nil)
	t2 := build(t, config(after), t1)
	moved = map[[2]string]int{}
	for u := range users {
		a := stickyPick(t, t1.Models()[0], userKey(u))
		b := stickyPick(t, t2.Models()[0], userKey(u))
		if a == b {
			stayed++
			continue
		}
		moved[[2]string{a, b}]++
	}
	return moved, stayed
}

func TestStickyWeightChangeMovesOnlyWhatItMust(t *testing.T) {
	const users = 100_000
	moved, _ := moves(t,
		sticky(model("m", ver("v1", 90), ver("v2", 10))),
		sticky(model("m", ver("v1", 80), ver("v2", 20))), users)
	total := 0
	for _, n := range moved {
		total += n
	}
	assert.Equal(t, map[[2]string]int{{"v1", "v2"}: total}, moved, "every mover goes from v1 to v2")
	assert.InDelta(t, 0.10, float64(total)/users, 0.02, "~10 %% of users move")

	// Raising one of three: movers only go to it.
	moved, _ = moves(t,
		sticky(model("m", ver("a", 50), ver("b", 30), ver("c", 20))),
		sticky(model("m", ver("a", 50), ver("b", 30), ver("c", 40))), users)
	for mv := range moved {
		assert.Equal(t, "c", mv[1], "mover %v", mv)
	}
}

func TestStickyRemovingVersionMovesOnlyItsUsers(t *testing.T) {
	const users = 30_000
	moved, stayed := moves(t,
		sticky(model("m", ver("a", 50), ver("b", 30), ver("c", 20))),
		sticky(model("m", ver("a", 50), ver("c", 20))), users)
	for mv, n := range moved {
		assert.Equal(t, "b", mv[0], "%d users moved %v", n, mv)
	}
	// b's ~30 % spread over a and c by weight (5:2).
	assert.InDelta(t, 0.30, float64(users-stayed)/users, 0.02)
	assert.InDelta(t, 5.0/2.0, float64(moved[[2]string{"b", "a"}])/float64(moved[[2]string{"b", "c"}]), 0.3)

	// Adding it back returns exactly those users.
	back, _ := moves(t,
		sticky(model("m", ver("a", 50), ver("c", 20))),
		sticky(model("m", ver("a", 50), ver("b", 30), ver("c", 20))), users)
	for mv, n := range back {
		assert.Equal(t, "b", mv[1], "%d users moved %v", n, mv)
	}
	assert.Equal(t, users-stayed, back[[2]string{"a", "b"}]+back[[2]string{"c", "b"}])
}

func TestStickyNeedsHeaderConfigured(t *testing.T) {
	m := only(t, model("m", ver("v1", 50), ver("v2", 50))) // no sticky_header
	got := map[string]int{}
	for range 10 {
		v, err := m.Pick(nil, []byte("user-1"))
		require.NoError(t, err)
		got[v.Name]++
	}
	assert.Equal(t, map[string]int{"v1": 5, "v2": 5}, got, "weighted, not sticky")
}
