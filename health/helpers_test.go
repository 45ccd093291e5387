package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/vaneproxy/vane/configs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Bounds of the eventually-style waits; every wait in these tests ends well
// before them when the code works.
const (
	waitFor = 3 * time.Second
	tick    = 2 * time.Millisecond
)

// backend is a real HTTP endpoint whose health answer tests can change.
type backend struct {
	*httptest.Server
	status atomic.Int32 // answer of the health path
	hang   atomic.Bool  // hold each probe until the client gives up
	probes atomic.Int64 // health requests seen
}

func newBackend(t *testing.T, status int) *backend {
	t.Helper()
	b := &backend{}
	b.status.Store(int32(status))
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.probes.Add(1)
		if b.hang.Load() {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(int(b.status.Load()))
	}))
	t.Cleanup(b.Close)
	return b
}

// addr is the backend's host:port.
func (b *backend) addr() string { return strings.TrimPrefix(b.URL, "http://") }

// fastHealth probes every 10ms with a 50ms timeout.
func fastHealth(healthy, unhealthy int) configs.Health {
	return configs.Health{Path: "/ready", Interval: 10 * time.Millisecond, Timeout: 50 * time.Millisecond,
		HealthyThreshold: healthy, UnhealthyThreshold: unhealthy}
}

// testBreaker opens at 50 % of at least 4 requests in 10s, stays open
// 100ms, and closes after 2 good trials.
func testBreaker() configs.CircuitBreaker {
	return configs.CircuitBreaker{FailureRatio: 0.5, MinRequests: 4, Window: 10 * time.Second,
		OpenFor: 100 * time.Millisecond, HalfOpenRequests: 2, FailureStatuses: []int{500, 502, 503, 504}}
}

// httpTarget watches b as version v of model "iris".
func httpTarget(b *backend, version string, h configs.Health) Target {
	url := b.URL
	return Target{Key: Key("iris", version, url), Model: "iris", Version: version, URL: url,
		Scheme: "http", Addr: b.addr(), Protocol: configs.ProtocolKServeV1, Health: h, Breaker: testBreaker()}
}

// changes records OnChange calls.
type changes struct {
	mu  sync.Mutex // guards got
	got map[string][]bool
}

func (r *changes) record(key string, routable bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string][]bool{}
	}
	r.got[key] = append(r.got[key], routable)
}

func (r *changes) of(key string) []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.got[key]...)
}

// waitChanges waits until key's OnChange calls are exactly want.
func (r *changes) waitChanges(t *testing.T, key string, want ...bool) {
	t.Helper()
	require.Eventually(t, func() bool { return equalBools(r.of(key), want) }, waitFor, tick,
		"OnChange calls of %q: want %v", key, want)
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fixture is a Checker with its own registry and change recorder.
type fixture struct {
	*Checker
	reg     *prometheus.Registry
	changes *changes
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), changes: &changes{}}
	c, err := NewChecker(Options{Registerer: f.reg, OnChange: f.changes.record})
	require.NoError(t, err)
	f.Checker = c
	return f
}

// run runs the Checker until the test ends.
func (f *fixture) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Error("Run did not return after its context ended")
		}
	})
}

// waitRoutable waits until Routable(key) is want.
func (f *fixture) waitRoutable(t *testing.T, key string, want bool) {
	t.Helper()
	require.Eventually(t, func() bool { return f.Routable(key) == want }, waitFor, tick,
		"Routable(%q) never became %v", key, want)
}

// fakeProber answers probes from a script, for threshold tests.
type fakeProber struct{ err error }

func (p *fakeProber) probe(context.Context) error { return p.err }
func (p *fakeProber) close()                      {}
