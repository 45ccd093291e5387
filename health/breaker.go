package health

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/vaneproxy/vane/configs"
)

// Breaker is the request-path handle of one endpoint's circuit breaker. The
// proxy resolves it once per snapshot (Checker.Breaker) and calls Allow before
// each upstream attempt and Record after it. A Breaker is safe for
// concurrent use, and it stays valid across Checker.Update calls that keep
// its endpoint, also when the breaker config changes (the handle then drives
// the rebuilt breaker). A nil *Breaker allows everything and records nothing.
//
// The breaker is failsafe-go's time-based circuit breaker:
//
//   - closed: opens when, within the rolling circuit_breaker.window (ten
//     buckets of window/10), at least min_requests attempts were recorded
//     and the share of failures is >= failure_ratio;
//   - open: Allow is false for open_for, then the breaker turns half-open
//     (at once while Checker.Run runs, else lazily on the next Allow);
//   - half-open: up to half_open_requests attempts are allowed at a time;
//     half_open_requests successes close it, one failure re-opens it.
type Breaker struct {
	// cur is the live circuit; Update swaps in a rebuilt one.
	cur atomic.Pointer[circuit]
	// state mirrors cur's circuitbreaker.State so that Routable reads one
	// atomic instead of failsafe's mutex.
	state atomic.Int32
	// syncMu serialises reading failsafe's state into state: whichever
	// transition syncs last reads (and stores) the latest state, however
	// failsafe's listeners interleave.
	syncMu sync.Mutex
	// publish sets the breaker's gauges from the mirror; it is called after
	// every sync, under syncMu (so it must not call back into b's sync).
	publish func()
	// changed is called after every state change of the live circuit
	// (never under a lock of this package).
	changed func(to circuitbreaker.State)
}

// circuit is one built failsafe breaker and the config it was built from.
type circuit struct {
	cb  circuitbreaker.CircuitBreaker[any]
	cfg configs.CircuitBreaker
	// failing is a bitset of the HTTP statuses that count as failures.
	failing [10]uint64
}

// newBreaker builds a closed breaker from cfg. changed is called after each
// state change of the live circuit (nil: nothing); publish (nil: nothing) after each sync
// of the mirror, to set the breaker's gauges.
func newBreaker(cfg configs.CircuitBreaker, publish func(), changed func(circuitbreaker.State)) *Breaker {
	if publish == nil {
		publish = func() {}
	}
	if changed == nil {
		changed = func(circuitbreaker.State) {}
	}
	b := &Breaker{publish: publish, changed: changed}
	b.cur.Store(b.build(cfg))
	return b
}

// build makes a circuit whose listener reports only while it is the live one.
func (b *Breaker) build(cfg configs.CircuitBreaker) *circuit {
	c := &circuit{cfg: cfg}
	for _, s := range cfg.FailureStatuses {
		if s >= 0 && s < 64*len(c.failing) {
			c.failing[s/64] |= 1 << (s % 64)
		}
	}
	c.cb = circuitbreaker.NewBuilder[any]().
		WithFailureRateThreshold(cfg.FailureRatio, atLeast1(cfg.MinRequests), cfg.Window).
		WithDelay(cfg.OpenFor).
		WithSuccessThreshold(atLeast1(cfg.HalfOpenRequests)).
		OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
			if b.cur.Load() == c {
				b.sync()
				b.changed(e.NewState)
			}
		}).
		Build()
	return c
}

// rebuild swaps in a breaker built from cfg. The rolling window's counts are
// lost; the state is carried over (an open breaker stays open, for a fresh
// open_for; a half-open one starts a fresh trial), so a reload never
// re-admits traffic to an endpoint its breaker had shut off.
func (b *Breaker) rebuild(cfg configs.CircuitBreaker) {
	old := b.cur.Load()
	c := b.build(cfg)
	switch old.cb.State() {
	case circuitbreaker.OpenState:
		c.cb.Open() // c is not live yet: its listener stays quiet
	case circuitbreaker.HalfOpenState:
		c.cb.HalfOpen()
	}
	b.cur.Store(c)
	if b.sync() != old.cb.State() {
		b.changed(b.State())
	}
}

// sync stores the live circuit's state in the mirror and returns it.
func (b *Breaker) sync() circuitbreaker.State {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	s := b.cur.Load().cb.State()
	b.state.Store(int32(s))
	b.publish()
	return s
}

// Allow reports whether an upstream attempt may go to the endpoint now. It
// is false while the breaker is open, and in half-open once
// half_open_requests attempts are in flight. Every Allow that returns true
// must be followed by exactly one Record: in half-open that is what
// releases the trial permit.
func (b *Breaker) Allow() bool {
	if b == nil {
		return true
	}
	return b.cur.Load().cb.TryAcquirePermit()
}

// Record reports the outcome of an attempt that Allow let through. It is a
// failure when err is a transport error or a timeout (any non-nil err but
// context.Canceled) or when status is one of circuit_breaker.failure_statuses
// (by default 500, 502, 503, 504; a 404 is a success). context.Canceled
// means the client left: that tells nothing about the endpoint and counts as
// a success, so that the permit is released without blame.
func (b *Breaker) Record(status int, err error) {
	if b == nil {
		return
	}
	c := b.cur.Load()
	if c.failure(status, err) {
		c.cb.RecordFailure()
	} else {
		c.cb.RecordSuccess()
	}
}

// State is the breaker's state as last synced from failsafe-go; nil reports
// closed.
func (b *Breaker) State() circuitbreaker.State {
	if b == nil {
		return circuitbreaker.ClosedState
	}
	return circuitbreaker.State(b.state.Load())
}

// failure classifies one attempt.
func (c *circuit) failure(status int, err error) bool {
	if err != nil {
		return !errors.Is(err, context.Canceled)
	}
	return status >= 0 && status < 64*len(c.failing) && c.failing[status/64]&(1<<(status%64)) != 0
}

// reset closes the breaker and clears its window, as an operator's reset.
func (b *Breaker) reset() {
	cb := b.cur.Load().cb
	// The concrete failsafe breaker also clears the closed state's counts.
	if r, ok := cb.(interface{ Reset() }); ok {
		r.Reset()
		return
	}
	cb.Close()
}

// halfOpenIfDue turns an open breaker half-open once its open_for has
// passed. failsafe-go only does that lazily, on the next permit request,
// which never comes for an endpoint that routing stopped sending traffic to.
func (b *Breaker) halfOpenIfDue() {
	cb := b.cur.Load().cb
	if cb.IsOpen() && cb.RemainingDelay() <= 0 {
		cb.HalfOpen()
	}
}

func atLeast1(n int) uint {
	if n < 1 {
		return 1
	}
	return uint(n)
}
