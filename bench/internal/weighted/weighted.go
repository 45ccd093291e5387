// Package weighted expands the peer benchmark's "backend=weight,..." flag
// into a cycle of slots that a counter walks: the two Go peers
// (bench/cmd/fastproxy, bench/cmd/httputilproxy) split traffic the same way.
package weighted

import (
	"fmt"
	"strconv"
	"strings"
)

// Slots parses "a=80,b=20" (a missing weight is 1) and returns one cycle
// of backends in smooth weighted round robin order, each backend made once
// by mk and appearing weight/gcd times, so that a counter modulo
// len(slots) splits traffic by weight and evenly within the cycle.
func Slots[T any](spec string, mk func(addr string) (T, error)) ([]T, error) {
	type backend struct {
		b T
		w int
	}
	var bs []backend
	for _, part := range strings.Split(spec, ",") {
		addr, ws, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			ws = "1"
		}
		b, err := mk(addr)
		if err != nil {
			return nil, fmt.Errorf("backend %q: %w", addr, err)
		}
		w, err := strconv.Atoi(ws)
		if err != nil || w < 1 {
			return nil, fmt.Errorf("backend %q: weight %q must be an integer >= 1", addr, ws)
		}
		bs = append(bs, backend{b, w})
	}
	if len(bs) == 0 {
		return nil, fmt.Errorf("no backends")
	}
	g := bs[0].w
	for _, b := range bs[1:] {
		g = gcd(g, b.w)
	}
	total := 0
	for i := range bs {
		bs[i].w /= g
		total += bs[i].w
	}
	cur := make([]int, len(bs))
	slots := make([]T, 0, total)
	for range total {
		best := 0
		for i := range bs {
			cur[i] += bs[i].w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		slots = append(slots, bs[best].b)
	}
	return slots, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
