package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// generator sends iris rows to the proxy at a steady rate, as a mix of
// anonymous and sticky users, and counts which version answered.
type generator struct {
	url    string
	rate   int
	client *http.Client
	start  time.Time

	// shift is added to petal_length once drift starts (read by workers).
	shift atomic.Uint64 // math.Float64bits

	seq atomic.Int64 // request ids

	// mu guards the counters and labels below.
	mu        sync.Mutex
	total     int
	sinceTick int
	byVersion map[string]int
	errors    int
	labels    []label // answered requests whose true species awaits posting
}

func newGenerator(base string, rate int) *generator {
	return &generator{
		url:       base + "/v1/models/iris:predict",
		rate:      rate,
		client:    &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16, Proxy: nil}},
		byVersion: map[string]int{},
		start:     time.Now(),
	}
}

const workers = 4

// drift makes every later row's petal_length larger by d.
func (g *generator) drift(d float64) { g.shift.Store(math.Float64bits(d)) }

func (g *generator) run(ctx context.Context) {
	var wg sync.WaitGroup
	interval := time.Duration(workers) * time.Second / time.Duration(g.rate)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(i), 42))
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					g.once(ctx, rnd)
				}
			}
		}()
	}
	wg.Wait()
}

// once sends one request: an iris-like row drawn around one of the three
// species, half the time as one of 50 sticky users.
func (g *generator) once(ctx context.Context, rnd *rand.Rand) {
	centers := [3][4]float64{{5.0, 3.4, 1.5, 0.2}, {5.9, 2.8, 4.3, 1.3}, {6.6, 3.0, 5.6, 2.0}}
	species := rnd.IntN(3)
	c := centers[species]
	shift := math.Float64frombits(g.shift.Load())
	body := fmt.Sprintf(`{"instances":[[%.2f,%.2f,%.2f,%.2f]]}`,
		c[0]+rnd.NormFloat64()*0.3, c[1]+rnd.NormFloat64()*0.3, c[2]+rnd.NormFloat64()*0.3+shift, c[3]+rnd.NormFloat64()*0.2)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url, bytes.NewReader([]byte(body)))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	rid := fmt.Sprintf("demo-%d", g.seq.Add(1))
	req.Header.Set("X-Request-Id", rid)
	if rnd.IntN(2) == 0 {
		req.Header.Set("x-user-id", fmt.Sprintf("user-%d", rnd.IntN(50)))
	}
	resp, err := g.client.Do(req)
	if ctx.Err() != nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total++
	g.sinceTick++
	if err != nil {
		g.errors++
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode >= 400 {
		g.errors++
		return
	}
	g.byVersion[resp.Header.Get("X-Vane-Version")]++
	if len(g.labels) < maxPendingLabels {
		g.labels = append(g.labels, label{RequestID: rid, Label: species})
	}
}

// line renders the one-line summary; tick > 0 adds the current rate.
func (g *generator) line(tick time.Duration) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "[%5.0fs] requests=%d", time.Since(g.start).Seconds(), g.total)
	if tick > 0 {
		fmt.Fprintf(&b, " (%.0f/s)", float64(g.sinceTick)/tick.Seconds())
		g.sinceTick = 0
	}
	names := make([]string, 0, len(g.byVersion))
	for v := range g.byVersion {
		names = append(names, v)
	}
	sort.Strings(names)
	ok := g.total - g.errors
	for _, v := range names {
		share := 0.0
		if ok > 0 {
			share = 100 * float64(g.byVersion[v]) / float64(ok)
		}
		fmt.Fprintf(&b, "  %s=%d (%.1f%%)", v, g.byVersion[v], share)
	}
	fmt.Fprintf(&b, "  errors=%d", g.errors)
	return b.String()
}
