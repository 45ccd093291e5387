// Package health decides which endpoints may take traffic. It probes every
// endpoint actively (HTTP GET of health.path, or the gRPC health service)
// and guards each one with a circuit breaker (failsafe-go) fed by the
// outcomes of real requests. An endpoint is routable when it is healthy and
// its breaker is not open.
//
// The package knows nothing of routing or the proxy: the proxy hands it
// Targets (Checker.Update), resolves each endpoint's Breaker for its request
// path, and learns of routability changes through Options.OnChange, which it
// applies to its routing table.
package health

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaneproxy/vane/configs"
)

// Target is one endpoint to watch.
type Target struct {
	// Key identifies the endpoint across Updates: model + "\x00" + version
	// + "\x00" + url. Empty means Checker derives it so.
	Key string
	// Model, Version and URL (as configured) name the endpoint in metrics
	// and logs.
	Model, Version, URL string
	// Scheme is "http" or "h2c".
	Scheme string
	// Addr is host:port.
	Addr string
	// Protocol is the model's inference protocol.
	Protocol configs.Protocol
	// Health configures the probes, as a parsed config gives it (configs
	// applies the defaults; zero is not "the default" here). An empty Path
	// probes the gRPC health service.
	Health configs.Health
	// Breaker configures the circuit breaker, as a parsed config gives it;
	// an empty FailureStatuses means no status is a failure (only errors
	// are).
	Breaker configs.CircuitBreaker
}

// Key is the Target.Key of an endpoint.
func Key(model, version, url string) string {
	return model + "\x00" + version + "\x00" + url
}

// Options configure a Checker. The zero value works: no metrics registered,
// logs discarded, no change notifications.
type Options struct {
	// Registerer receives the package's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives state changes (Info/Warn) and probe failures (Debug);
	// nil discards.
	Logger *slog.Logger
	// Now is the clock that times probes; nil means time.Now. Breakers read
	// the wall clock: failsafe-go v0.9.8 offers no clock to inject.
	Now func() time.Time
	// OnChange, when set, is called whenever Routable(key) changes, from a
	// goroutine of the Checker and never under its locks, so it may call
	// any Checker or Breaker method. Calls for one key are serialised and
	// in order, and the last one carries the current value; calls for
	// different keys may run concurrently. They flow only while Run runs
	// (changes made before Run are delivered when it starts). A new key
	// starts not routable and gets no call until that changes. A removed
	// key gets no further call, but for one that was already under way
	// when Update removed it.
	OnChange func(key string, routable bool)
}

// Checker watches a set of endpoints. Update, Routable, Healthy,
// BreakerState, Breaker and Reset are safe for concurrent use and never wait
// on a probe.
type Checker struct {
	log      *slog.Logger
	now      func() time.Time
	onChange func(string, bool)
	metrics  *metrics
	probes   *probeTransports

	// view is the current key → target map, replaced whole by Update so
	// that readers need no lock.
	view atomic.Pointer[map[string]*target]

	// mu guards the targets' settings and goroutine handles, runCtx and
	// ran, and serialises Update with Run's start and stop. It is never
	// held while probing or calling OnChange.
	mu     sync.Mutex
	runCtx context.Context // set while Run runs
	ran    bool            // Run was called; it runs at most once
	wg     sync.WaitGroup  // the goroutines started under Run
}

// NewChecker returns a Checker watching nothing; it fails only when the
// metrics cannot be registered.
func NewChecker(opts Options) (*Checker, error) {
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	c := &Checker{log: opts.Logger, now: opts.Now, onChange: opts.OnChange, metrics: m, probes: newProbeTransports()}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.view.Store(&map[string]*target{})
	return c, nil
}

// Update sets the watched endpoints: Prepare(targets).Commit(). A new key
// is probed at once and is not healthy until its first probe passes; that
// first pass makes it healthy at once, later changes need the thresholds. A
// removed key's goroutines end (in the background; an in-flight probe is
// cancelled), its connections close and its metric series are deleted. A
// surviving key keeps its health, threshold counts and breaker: changed
// probe settings restart its prober, which probes at once; a changed breaker
// config rebuilds the breaker, which loses its rolling window's counts but
// keeps its state (an open breaker stays open for a fresh open_for). When
// keys repeat in targets, the last one wins.
func (c *Checker) Update(targets []Target) { c.Prepare(targets).Commit() }

// Plan is a set of endpoints prepared by Checker.Prepare and not applied
// yet: until Commit nothing is probed, no metric series appears and the
// surviving keys keep their settings. A Plan that is never committed is
// dropped with nothing to undo.
type Plan struct {
	c *Checker
	// targets are the new set in order, a key at most once (the last of
	// its repeats); next maps each key to its state, a kept one or a new
	// one built by Prepare.
	targets []Target
	next    map[string]*target
	fresh   map[string]bool // keys that Prepare created
}

// Prepare builds the state of targets off to the side (see Update for what
// survives). It changes nothing that the Checker serves; Commit applies it.
// Prepare and Commit of one Checker are serialised by the caller: a Plan is
// committed before the next one is prepared (Update does both at once).
func (c *Checker) Prepare(targets []Target) *Plan {
	old := *c.view.Load()
	p := &Plan{c: c, next: make(map[string]*target, len(targets)), fresh: map[string]bool{}}
	at := make(map[string]int, len(targets))
	for _, nt := range targets {
		if nt.Key == "" {
			nt.Key = Key(nt.Model, nt.Version, nt.URL)
		}
		if i, ok := at[nt.Key]; ok { // a repeated key: the last one wins
			p.targets[i] = nt
			continue
		}
		at[nt.Key] = len(p.targets)
		p.targets = append(p.targets, nt)
	}
	for _, nt := range p.targets {
		t, ok := old[nt.Key]
		if !ok {
			t = newTarget(nt)
			p.fresh[nt.Key] = true
		}
		p.next[nt.Key] = t
	}
	return p
}

// Breaker is the request-path handle of key's breaker once p is committed
// (the same handle as today's for a surviving key); nil for a key p does
// not hold.
func (p *Plan) Breaker(key string) *Breaker {
	if t := p.next[key]; t != nil {
		return t.breaker
	}
	return nil
}

// Routable is Checker.Routable as it will be right after Commit: a new key
// is not routable, a surviving one keeps its current value.
func (p *Plan) Routable(key string) bool {
	t := p.next[key]
	return t != nil && t.routable()
}

// Commit applies p: the new keys get their metric series and start probing
// (under Run), the surviving ones take their new settings, the removed ones
// stop. It cannot fail.
func (p *Plan) Commit() {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.view.Load()
	for _, nt := range p.targets {
		t := p.next[nt.Key]
		if p.fresh[nt.Key] {
			c.adopt(t)
			if c.runCtx != nil {
				c.start(t)
			}
		} else {
			c.update(t, nt)
		}
	}
	next := p.next
	c.view.Store(&next)

	versions := map[[2]string]bool{}
	for _, t := range next {
		versions[[2]string{t.model, t.version}] = true
	}
	for key, t := range old {
		if next[key] != nil {
			continue
		}
		if t.cancel != nil {
			t.cancel()
		}
		c.metrics.deleteEndpoint(t.model, t.version, t.url)
		if !versions[[2]string{t.model, t.version}] {
			c.metrics.deleteVersion(t.model, t.version)
		}
	}
}

// newTarget creates the state of a new key, not healthy, breaker closed;
// adopt makes it the Checker's.
func newTarget(nt Target) *target {
	t := &target{
		key: nt.Key, model: nt.Model, version: nt.Version, url: nt.URL,
		cfg:    nt,
		notify: make(chan struct{}, 1),
	}
	t.breaker = newBreaker(nt.Breaker, t.publishBreaker, nil)
	return t
}

// adopt gives a target from newTarget its metric series and its breaker
// listener, and publishes its breaker state. Requires c.mu.
func (c *Checker) adopt(t *target) {
	t.series = c.metrics.forEndpoint(t.model, t.version, t.url)
	t.breaker.changed = c.breakerListener(t)
	t.publishBreaker()
}

// update applies new settings to a surviving target. Requires c.mu.
func (c *Checker) update(t *target, nt Target) {
	restart := probeSettingsChanged(t.cfg, nt)
	rebuild := breakerChanged(t.cfg.Breaker, nt.Breaker)
	t.cfg = nt
	if restart && t.ctx != nil {
		t.probeCancel()
		c.startProber(t)
	}
	if rebuild {
		t.breaker.rebuild(nt.Breaker)
	}
}

// start launches t's watch and probe goroutines under Run. Requires c.mu.
func (c *Checker) start(t *target) {
	ctx, cancel := context.WithCancel(c.runCtx)
	t.ctx, t.cancel = ctx, cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.watchLoop(ctx, t)
	}()
	c.startProber(t)
}

// startProber launches a prober loop with t's current settings; it takes
// over the counters once the previous loop (if any) has ended. Requires c.mu.
func (c *Checker) startProber(t *target) {
	ctx, cancel := context.WithCancel(t.ctx)
	prev, done, cfg := t.probeDone, make(chan struct{}), t.cfg
	t.probeCancel, t.probeDone = cancel, done
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(done)
		c.probeLoop(ctx, t, cfg, prev)
	}()
}

// Run probes the watched endpoints and delivers OnChange until ctx ends,
// then stops every goroutine it started, closes their connections and
// returns. Update may be called before, during and after Run; after Run
// returns nothing is probed any more. Run may be called once; a second call
// returns at once.
func (c *Checker) Run(ctx context.Context) {
	c.mu.Lock()
	if c.ran {
		c.mu.Unlock()
		c.log.Error("health: Checker.Run called twice")
		return
	}
	c.ran = true
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.runCtx = runCtx
	for _, t := range *c.view.Load() {
		c.start(t)
	}
	c.mu.Unlock()

	<-ctx.Done()

	c.mu.Lock()
	c.runCtx = nil
	for _, t := range *c.view.Load() {
		t.ctx, t.cancel, t.probeCancel, t.probeDone = nil, nil, nil, nil
	}
	c.mu.Unlock()
	cancel()
	c.wg.Wait()
	c.probes.close()
}

func (c *Checker) lookup(key string) *target { return (*c.view.Load())[key] }

// Routable reports whether key's endpoint may take traffic: healthy and its
// breaker not open. A half-open breaker counts as routable so that its trial
// requests can flow (Breaker.Allow then admits half_open_requests at a time).
// Unknown keys are not routable.
func (c *Checker) Routable(key string) bool {
	t := c.lookup(key)
	return t != nil && t.routable()
}

// Healthy reports whether key's endpoint passes its probes; unknown keys are
// not healthy.
func (c *Checker) Healthy(key string) bool {
	t := c.lookup(key)
	return t != nil && t.healthy.Load()
}

// BreakerState is "closed", "open" or "half-open" for key's breaker, and ""
// for an unknown key.
func (c *Checker) BreakerState(key string) string {
	t := c.lookup(key)
	if t == nil {
		return ""
	}
	return t.breaker.State().String()
}

// Breaker returns the request-path handle of key's breaker, nil for an
// unknown key. The handle stays valid while the key survives Updates.
func (c *Checker) Breaker(key string) *Breaker {
	if t := c.lookup(key); t != nil {
		return t.breaker
	}
	return nil
}

// Reset closes, and clears the rolling window of, the breakers of the
// endpoints that match; an empty model, version or url matches any. It
// returns how many endpoints matched (each now has a closed breaker,
// whatever state it was in).
func (c *Checker) Reset(model, version, url string) int {
	n := 0
	for _, t := range *c.view.Load() {
		if (model == "" || t.model == model) && (version == "" || t.version == version) && (url == "" || t.url == url) {
			t.breaker.reset()
			n++
		}
	}
	return n
}
