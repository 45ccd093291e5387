package health

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/vaneproxy/vane/configs"
)

// target is the long-lived state of one watched endpoint.
type target struct {
	key                 string
	model, version, url string // immutable, from the first Target of key
	healthy             atomic.Bool
	breaker             *Breaker
	series              *series
	// notify wakes the watch goroutine after a change of health or breaker
	// state; it holds at most one pending wake-up.
	notify chan struct{}

	// Guarded by Checker.mu: the latest settings and the goroutines' handles.
	cfg         Target
	ctx         context.Context    // the target's life under Run; nil outside Run
	cancel      context.CancelFunc // ends ctx
	probeCancel context.CancelFunc // ends the current prober loop
	probeDone   chan struct{}      // closed when the current prober loop ended

	// Owned by the prober loop that runs; a restarted loop waits for its
	// predecessor's probeDone before touching them.
	passes, fails int
	passedOnce    bool
	failedFirst   bool // the "not healthy yet" warning was logged
}

// routable is the contract of Checker.Routable: healthy, and the breaker
// not open (half-open lets the trial requests through).
func (t *target) routable() bool {
	return t.healthy.Load() && t.breaker.State() != circuitbreaker.OpenState
}

// publishBreaker sets t's breaker gauges from its breaker state and health.
// t.breaker is nil only while newTarget builds it, t.series until the
// target is adopted.
func (t *target) publishBreaker() {
	if t.breaker == nil || t.series == nil {
		return
	}
	t.series.setBreaker(t.breaker.State, t.healthy.Load)
}

// wake schedules a run of the watch loop without ever blocking.
func (t *target) wake() {
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// probeSettingsChanged reports whether the prober of a surviving endpoint
// must restart for b.
func probeSettingsChanged(a, b Target) bool {
	return a.Health != b.Health || a.Protocol != b.Protocol || a.Scheme != b.Scheme || a.Addr != b.Addr
}

// breakerChanged reports whether the breaker must be rebuilt for b.
func breakerChanged(a, b configs.CircuitBreaker) bool {
	return a.FailureRatio != b.FailureRatio || a.MinRequests != b.MinRequests ||
		a.Window != b.Window || a.OpenFor != b.OpenFor ||
		a.HalfOpenRequests != b.HalfOpenRequests || !slices.Equal(a.FailureStatuses, b.FailureStatuses)
}

// probeLoop probes t at once and then every health.interval plus up to a
// tenth of it at random (so that endpoints configured together do not probe
// in lockstep), until ctx ends. prev, when not nil, is the predecessor
// loop's done channel: the counters are handed over, never shared.
func (c *Checker) probeLoop(ctx context.Context, t *target, cfg Target, prev <-chan struct{}) {
	defer c.recoverGoroutine("probe", t)
	if prev != nil {
		select {
		case <-prev:
		case <-ctx.Done():
			return
		}
	}
	p := c.newProber(cfg)
	defer p.close()
	interval := cfg.Health.Interval
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		c.probeOnce(ctx, t, cfg, p)
		timer.Reset(interval + rand.N(interval/10+1))
	}
}

// probeOnce sends one probe and applies the thresholds.
func (c *Checker) probeOnce(ctx context.Context, t *target, cfg Target, p prober) {
	pctx, cancel := context.WithTimeout(ctx, cfg.Health.Timeout)
	start := c.now()
	err := p.probe(pctx)
	cancel()
	if ctx.Err() != nil {
		return // removed or stopped mid-probe: the answer is nobody's
	}
	t.series.duration.Observe(c.now().Sub(start).Seconds())
	if err == nil {
		t.series.pass.Inc()
		t.fails = 0
		t.passes++
		// The first pass ever is enough: a new endpoint should take traffic
		// as soon as it answers, not healthy_threshold intervals later.
		if !t.healthy.Load() && (!t.passedOnce || t.passes >= max(1, cfg.Health.HealthyThreshold)) {
			c.setHealthy(t, true, nil)
		}
		t.passedOnce = true
		return
	}
	t.series.fail.Inc()
	t.passes = 0
	t.fails++
	c.log.Debug("health probe failed", append(t.attrs(), "err", err)...)
	if !t.passedOnce && !t.failedFirst {
		// A new endpoint that has never answered gets no traffic; say why
		// once, so an operator is not left guessing (a wrong health.path
		// shows up here).
		t.failedFirst = true
		c.log.Warn("endpoint not healthy yet: it gets no traffic until a probe passes",
			append(t.attrs(), "err", err)...)
	}
	if t.healthy.Load() && t.fails >= max(1, cfg.Health.UnhealthyThreshold) {
		c.setHealthy(t, false, err)
	}
}

func (c *Checker) setHealthy(t *target, ok bool, err error) {
	t.healthy.Store(ok)
	t.series.healthy.Set(boolGauge(ok))
	t.publishBreaker()
	if ok {
		c.log.Info("endpoint healthy", t.attrs()...)
	} else {
		c.log.Warn("endpoint unhealthy", append(t.attrs(), "err", err)...)
	}
	t.wake()
}

// watchLoop delivers OnChange for t and turns its open breaker half-open
// when open_for has passed. It is the only caller of OnChange for t, so the
// calls for one key are serialised, in order, and the last one always
// carries the current Routable. delivered is what OnChange last said (a
// new endpoint starts not routable, so nothing is said until it is).
func (c *Checker) watchLoop(ctx context.Context, t *target) {
	defer c.recoverGoroutine("watch", t)
	delivered := false
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if r := t.routable(); r != delivered && ctx.Err() == nil {
			delivered = r
			if c.onChange != nil {
				c.onChange(t.key, r)
			}
		}
		if cb := t.breaker.cur.Load().cb; cb.IsOpen() {
			timer.Reset(cb.RemainingDelay())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.notify:
		case <-timer.C:
			t.breaker.halfOpenIfDue()
		}
	}
}

// recoverGoroutine logs a panic at a goroutine boundary instead of
// crashing the proxy; the endpoint keeps its last state.
func (c *Checker) recoverGoroutine(loop string, t *target) {
	if r := recover(); r != nil {
		c.log.Error("health goroutine panicked", append(t.attrs(), "loop", loop,
			"panic", r, "stack", string(debug.Stack()))...)
	}
}

// attrs name t in log records.
func (t *target) attrs() []any {
	return []any{"model", t.model, "version", t.version, "endpoint", t.url}
}

// breakerListener returns the listener of t's breaker transitions.
func (c *Checker) breakerListener(t *target) func(circuitbreaker.State) {
	return func(to circuitbreaker.State) {
		t.series.transition(to)
		level := slog.LevelInfo
		if to == circuitbreaker.OpenState {
			level = slog.LevelWarn
		}
		c.log.Log(context.Background(), level, "circuit breaker state changed", append(t.attrs(), "to", to.String())...)
		t.wake()
	}
}
