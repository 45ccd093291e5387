package routing

import (
	"cmp"
	"container/heap"
	"slices"
)

// slotsTotal is the resolution of weighted choice: configured weights are
// quantised to integer slots summing to this, i.e. steps of 0.01 %.
const slotsTotal = 10000

// failSlot marks a cycle entry that answers ErrNoRoutableVersion
// (on_unhealthy: fail). Other entries are version indexes.
const failSlot = -1

// quantise turns relative weights into integer slots that sum exactly to
// slotsTotal by the largest-remainder method, so shares are exact to
// 0.01 %. A weight <= 0 gets no slot; a weight > 0 gets at least one, taken
// from the version most over-served by rounding, so a tiny canary is never
// silently switched off. The second result is false when no weight is > 0.
//
// If more than slotsTotal versions have weight > 0 the total is raised to
// their count so each still gets a slot.
func quantise(weights []float64) ([]int, bool) {
	var sum float64
	positive := 0
	for _, w := range weights {
		if w > 0 {
			sum += w
			positive++
		}
	}
	if positive == 0 {
		return nil, false
	}
	total := max(slotsTotal, positive)
	slots := make([]int, len(weights))
	exact := make([]float64, len(weights))
	given := 0
	for i, w := range weights {
		if w > 0 {
			exact[i] = w / sum * float64(total)
			slots[i] = int(exact[i])
			given += slots[i]
		}
	}
	// Hand the remaining slots to the largest fractional parts; ties go to
	// the earlier version so the result is deterministic.
	order := make([]int, 0, positive)
	for i, w := range weights {
		if w > 0 {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(exact[b]-float64(slots[b]), exact[a]-float64(slots[a]))
	})
	for k := 0; given < total; k++ {
		slots[order[k%len(order)]]++
		given++
	}
	// Every positive weight keeps at least one slot.
	for i, w := range weights {
		if w <= 0 || slots[i] > 0 {
			continue
		}
		donor := -1
		for j := range slots {
			if slots[j] > 1 && (donor < 0 || float64(slots[j])-exact[j] > float64(slots[donor])-exact[donor]) {
				donor = j
			}
		}
		slots[donor]--
		slots[i] = 1
	}
	return slots, true
}

// swrrCycle returns one full cycle of a smooth weighted round robin over
// entries with the given integer weights: each entry appears exactly
// weight/g times, where g is the GCD of the positive weights, and runs of one
// entry are as short as the weights allow (80/20 gives v1 v1 v2 v1 v1).
// ids[i] is what the cycle holds for entry i. Entries with weight <= 0 never
// appear; with no positive weight the cycle is empty.
//
// Entry i's k-th appearance (k = 0..w_i-1) is placed at (k+½)/w_i of the
// cycle (Sainte-Laguë's divisors), ties to the lower entry: the same
// spread as nginx's smooth weighted round robin, in O(n + total·log n)
// instead of its O(n·total) (10,000 versions: 10^8 steps per rebuild).
func swrrCycle(ids []int, weights []int) []int {
	g := 0
	for _, w := range weights {
		if w > 0 {
			g = gcd(g, w)
		}
	}
	if g == 0 {
		return nil
	}
	h := &slotHeap{}
	n := 0
	for i, x := range weights {
		if x > 0 {
			h.items = append(h.items, slotItem{entry: i, w: x / g})
			n += x / g
		}
	}
	heap.Init(h)
	cycle := make([]int, 0, n)
	for len(cycle) < n {
		it := &h.items[0]
		cycle = append(cycle, ids[it.entry])
		if it.k++; it.k == it.w {
			heap.Pop(h)
		} else {
			heap.Fix(h, 0)
		}
	}
	return cycle
}

// slotItem is one entry's next appearance, at (2k+1)/(2w) of the cycle.
type slotItem struct{ entry, w, k int }

// slotHeap orders entries by their next appearance, then by entry.
type slotHeap struct{ items []slotItem }

func (h *slotHeap) Len() int { return len(h.items) }
func (h *slotHeap) Less(a, b int) bool {
	x, y := h.items[a], h.items[b]
	// (2k_x+1)/w_x < (2k_y+1)/w_y, in integers.
	l, r := int64(2*x.k+1)*int64(y.w), int64(2*y.k+1)*int64(x.w)
	if l != r {
		return l < r
	}
	return x.entry < y.entry
}
func (h *slotHeap) Swap(a, b int) { h.items[a], h.items[b] = h.items[b], h.items[a] }
func (h *slotHeap) Push(x any)    { h.items = append(h.items, x.(slotItem)) }
func (h *slotHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// pickWeighted takes the next slot of the model's cycle. The shared counter
// makes every window of len(cycle) consecutive picks, across all goroutines,
// hit each version exactly its quantised share.
func (m *Model) pickWeighted(s *pickState) (*Version, error) {
	i := m.next.Add(1) - 1
	slot := s.cycle[i%uint64(len(s.cycle))]
	if slot == failSlot {
		return nil, ErrNoRoutableVersion
	}
	return m.Versions[slot], nil
}
