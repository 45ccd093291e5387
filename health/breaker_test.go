package health

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// attempt is one request through br: Allow, then Record when allowed.
func attempt(br *Breaker, status int, err error) bool {
	if !br.Allow() {
		return false
	}
	br.Record(status, err)
	return true
}

func TestBreakerLifecycle(t *testing.T) {
	b := newBackend(t, http.StatusOK)
	f := newFixture(t)
	tg := httpTarget(b, "v1", fastHealth(1, 1))
	f.Update([]Target{tg})
	f.run(t)
	f.waitRoutable(t, tg.Key, true)
	br := f.Breaker(tg.Key)

	// closed → open: 2 failures of 4 requests is 50 %.
	for _, s := range []int{200, 500, 200, 503} {
		require.True(t, attempt(br, s, nil))
	}
	assert.Equal(t, "open", f.BreakerState(tg.Key))
	assert.False(t, br.Allow(), "open refuses")
	assert.False(t, f.Routable(tg.Key), "open is not routable")
	assert.True(t, f.Healthy(tg.Key), "the breaker does not touch health")

	// open → half-open after open_for, without any request.
	f.waitRoutable(t, tg.Key, true)
	assert.Equal(t, "half-open", f.BreakerState(tg.Key))

	// half-open → closed after half_open_requests (2) good trials; only
	// two are let through at a time.
	require.True(t, br.Allow())
	require.True(t, br.Allow())
	assert.False(t, br.Allow(), "trial permits exhausted")
	br.Record(http.StatusOK, nil)
	br.Record(http.StatusNotFound, nil) // 404 is not a failure
	assert.Equal(t, "closed", f.BreakerState(tg.Key))
	assert.True(t, f.Routable(tg.Key))

	// One OnChange per change of Routable: first pass, open, half-open.
	// (half-open → closed leaves it routable.)
	f.changes.waitChanges(t, tg.Key, true, false, true)
	for to, want := range map[string]float64{"open": 1, "half-open": 1, "closed": 1} {
		assert.Equal(t, want, transitions(t, f.reg, to), "transitions to %s", to)
	}
}

func TestBreakerReopensOnHalfOpenFailure(t *testing.T) {
	f := newFixture(t)
	tg := Target{Key: "k", Model: "m", Version: "v", URL: "http://x", Breaker: testBreaker()}
	tg.Breaker.OpenFor = 20 * time.Millisecond
	f.Update([]Target{tg})
	br := f.Breaker("k")
	for range 4 {
		attempt(br, 0, context.DeadlineExceeded)
	}
	require.Equal(t, "open", f.BreakerState("k"))
	time.Sleep(30 * time.Millisecond)
	// Without Run, failsafe turns half-open lazily on the next Allow.
	require.True(t, br.Allow())
	assert.Equal(t, "half-open", f.BreakerState("k"))
	br.Record(http.StatusOK, nil)
	require.True(t, attempt(br, http.StatusServiceUnavailable, nil))
	assert.Equal(t, "open", f.BreakerState("k"), "one failed trial re-opens")
	assert.False(t, br.Allow())
}

// TestBreakerOpensAt replays outcomes (o ok, x failure) and reports when
// the breaker opened.
func TestBreakerOpensAt(t *testing.T) {
	tests := []struct {
		name     string
		ratio    float64
		min      int
		outcomes string
		openAt   int // 1-based index of the outcome that opens; 0 never
	}{
		{"below min_requests", 0.5, 4, "xxx", 0},
		{"at min_requests", 0.5, 4, "xxxx", 4},
		{"ratio reached", 0.5, 4, "oxox", 4},
		{"ratio not reached", 0.5, 4, "ooxoxoo", 0},
		{"ratio reached later", 0.5, 4, "oooxxx", 6},
		{"ratio 1 needs all", 1, 2, "oxxox", 0},
		{"ratio 0.25", 0.25, 4, "oooxo", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testBreaker()
			cfg.FailureRatio, cfg.MinRequests = tt.ratio, tt.min
			br := newBreaker(cfg, nil, func(circuitbreaker.State) {})
			opened := 0
			for i, o := range tt.outcomes {
				status := http.StatusOK
				if o == 'x' {
					status = http.StatusInternalServerError
				}
				require.True(t, attempt(br, status, nil), "outcome %d refused", i+1)
				if opened == 0 && br.State().String() == "open" {
					opened = i + 1
					break
				}
			}
			assert.Equal(t, tt.openAt, opened)
		})
	}
}

func TestBreakerFailureClassification(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		status   int
		err      error
		failure  bool
	}{
		{"200", configs.DefaultFailureStatuses(), 200, nil, false},
		{"404 by default", configs.DefaultFailureStatuses(), 404, nil, false},
		{"429 by default", configs.DefaultFailureStatuses(), 429, nil, false},
		{"500", configs.DefaultFailureStatuses(), 500, nil, true},
		{"503", configs.DefaultFailureStatuses(), 503, nil, true},
		{"501 not listed", configs.DefaultFailureStatuses(), 501, nil, false},
		{"404 when listed", []int{404, 500}, 404, nil, true},
		{"500 when not listed", []int{404}, 500, nil, false},
		{"no statuses", nil, 503, nil, false},
		{"transport error", nil, 0, errors.New("connection refused"), true},
		{"timeout", nil, 0, context.DeadlineExceeded, true},
		{"wrapped timeout", nil, 0, fmt.Errorf("upstream: %w", os.ErrDeadlineExceeded), true},
		{"client left", configs.DefaultFailureStatuses(), 0, fmt.Errorf("reading: %w", context.Canceled), false},
		{"odd status", []int{500}, 1000, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testBreaker()
			cfg.FailureStatuses = tt.statuses
			br := newBreaker(cfg, nil, func(circuitbreaker.State) {})
			assert.Equal(t, tt.failure, br.cur.Load().failure(tt.status, tt.err))
			// And end to end: four such outcomes open the breaker iff failures.
			for range 4 {
				attempt(br, tt.status, tt.err)
			}
			assert.Equal(t, tt.failure, br.State().String() == "open")
		})
	}
}

func TestReset(t *testing.T) {
	f := newFixture(t)
	var targets []Target
	for _, ep := range []string{"iris/v1/http://a", "iris/v1/http://b", "iris/v2/http://c", "wine/v1/http://d"} {
		p := strings.SplitN(ep, "/", 3)
		tg := Target{Key: Key(p[0], p[1], p[2]), Model: p[0], Version: p[1], URL: p[2], Breaker: testBreaker()}
		tg.Breaker.OpenFor = time.Hour
		targets = append(targets, tg)
	}
	f.Update(targets)
	openAll := func() {
		for _, tg := range targets {
			for range 4 {
				attempt(f.Breaker(tg.Key), 502, nil)
			}
			require.Equal(t, "open", f.BreakerState(tg.Key))
		}
	}
	tests := []struct {
		model, version, url string
		want                int
	}{
		{"nope", "", "", 0},
		{"iris", "v1", "http://b", 1},
		{"iris", "v1", "", 2},
		{"", "v1", "", 3},
		{"iris", "", "", 3},
		{"", "", "", 4},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s", tt.model, tt.version, tt.url), func(t *testing.T) {
			openAll()
			assert.Equal(t, tt.want, f.Reset(tt.model, tt.version, tt.url))
			closed := 0
			for _, tg := range targets {
				if f.BreakerState(tg.Key) == "closed" {
					closed++
				}
			}
			assert.Equal(t, tt.want, closed)
		})
	}
	// A reset also clears the window: 3 more failures stay under min_requests.
	f.Reset("", "", "")
	br := f.Breaker(targets[0].Key)
	for range 3 {
		attempt(br, 500, nil)
	}
	assert.Equal(t, "closed", f.BreakerState(targets[0].Key))
}

func TestNilBreaker(t *testing.T) {
	var br *Breaker
	assert.True(t, br.Allow())
	br.Record(500, errors.New("x"))
	assert.Equal(t, "closed", br.State().String())
}
