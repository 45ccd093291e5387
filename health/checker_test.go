package health

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewEndpointNotRoutableUntilFirstPass(t *testing.T) {
	b := newBackend(t, http.StatusServiceUnavailable)
	f := newFixture(t)
	// healthy_threshold 3: the first pass ever is enough all the same.
	tg := httpTarget(b, "v1", fastHealth(3, 2))
	f.Update([]Target{tg})
	assert.False(t, f.Routable(tg.Key), "a new endpoint starts not routable")
	f.run(t)

	require.Eventually(t, func() bool { return b.probes.Load() >= 3 }, waitFor, tick)
	assert.False(t, f.Routable(tg.Key), "failing probes keep it out")
	assert.False(t, f.Healthy(tg.Key))
	assert.Empty(t, f.changes.of(tg.Key), "no change, no call")

	b.status.Store(http.StatusOK)
	f.waitRoutable(t, tg.Key, true)
	assert.True(t, f.Healthy(tg.Key))
	f.changes.waitChanges(t, tg.Key, true)
}

func TestNewEndpointProbedAtOnce(t *testing.T) {
	b := newBackend(t, http.StatusOK)
	f := newFixture(t)
	h := fastHealth(2, 2)
	h.Interval = time.Hour // only the immediate probe can make it healthy
	tg := httpTarget(b, "v1", h)
	f.run(t)
	f.Update([]Target{tg}) // during Run
	f.waitRoutable(t, tg.Key, true)
}

// TestThresholds drives the threshold logic probe by probe: P is a passing
// probe, F a failing one; want is Healthy after each.
func TestThresholds(t *testing.T) {
	tests := []struct {
		name               string
		healthy, unhealthy int
		probes, want       string
	}{
		{"first pass is enough", 3, 2, "P", "H"},
		{"fails before first pass", 3, 2, "FFFP", "___H"},
		{"unhealthy after 2 fails", 3, 2, "PFF", "HH_"},
		{"a pass resets the fail count", 3, 2, "PFPFPFF", "HHHHHH_"},
		{"back after 3 passes", 3, 2, "PFFPPP", "HH___H"},
		{"a fail resets the pass count", 3, 2, "PFFPPFPPP", "HH______H"},
		{"thresholds of 1", 1, 1, "PFPF", "H_H_"},
		{"zero thresholds mean 1", 0, 0, "PFP", "H_H"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tg := Target{Key: "k", Model: "m", Version: "v", URL: "http://x", Health: fastHealth(tt.healthy, tt.unhealthy),
				Breaker: testBreaker()}
			f.Update([]Target{tg})
			target := f.lookup("k")
			var got []byte
			for _, r := range tt.probes {
				p := &fakeProber{}
				if r == 'F' {
					p.err = errors.New("down")
				}
				f.probeOnce(context.Background(), target, tg, p)
				if f.Healthy("k") {
					got = append(got, 'H')
				} else {
					got = append(got, '_')
				}
			}
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func TestThresholdsWithRealProbes(t *testing.T) {
	b := newBackend(t, http.StatusOK)
	f := newFixture(t)
	tg := httpTarget(b, "v1", fastHealth(3, 3))
	f.Update([]Target{tg})
	f.run(t)
	f.waitRoutable(t, tg.Key, true)

	b.status.Store(http.StatusInternalServerError)
	start := b.probes.Load()
	f.waitRoutable(t, tg.Key, false)
	assert.GreaterOrEqual(t, b.probes.Load()-start, int64(3), "unhealthy only after 3 failures")

	b.status.Store(http.StatusOK)
	start = b.probes.Load()
	f.waitRoutable(t, tg.Key, true)
	assert.GreaterOrEqual(t, b.probes.Load()-start, int64(3), "healthy again only after 3 passes")
	f.changes.waitChanges(t, tg.Key, true, false, true)
}

func TestSlowProbeDoesNotDelayOthers(t *testing.T) {
	slow := newBackend(t, http.StatusOK)
	slow.hang.Store(true)
	fast := newBackend(t, http.StatusOK)
	f := newFixture(t)
	h := fastHealth(1, 1)
	h.Timeout = time.Second // the slow probe hangs for a whole second
	f.Update([]Target{httpTarget(slow, "v1", h), httpTarget(fast, "v2", h)})
	f.run(t)
	time.Sleep(200 * time.Millisecond)
	// At 10ms (+≤10 % jitter) a fast endpoint gets about 18 probes in 200ms;
	// a shared loop would be stuck behind the hanging one.
	assert.GreaterOrEqual(t, fast.probes.Load(), int64(8))
	assert.LessOrEqual(t, slow.probes.Load(), int64(1))
}

func TestProbeTimeoutCountsAsFailure(t *testing.T) {
	b := newBackend(t, http.StatusOK)
	b.hang.Store(true)
	f := newFixture(t)
	h := fastHealth(1, 1)
	h.Timeout = 20 * time.Millisecond
	tg := httpTarget(b, "v1", h)
	f.Update([]Target{tg})
	f.run(t)
	require.Eventually(t, func() bool {
		return counterValue(t, f.reg, "vane_health_probes_total", "fail") >= 2
	}, waitFor, tick)
	assert.False(t, f.Healthy(tg.Key))
	assert.Zero(t, counterValue(t, f.reg, "vane_health_probes_total", "pass"))
}

func TestUpdateKeepsSurvivingState(t *testing.T) {
	a, b := newBackend(t, http.StatusOK), newBackend(t, http.StatusOK)
	f := newFixture(t)
	ta, tb := httpTarget(a, "v1", fastHealth(2, 2)), httpTarget(b, "v2", fastHealth(2, 2))
	f.Update([]Target{ta, tb})
	f.run(t)
	f.waitRoutable(t, ta.Key, true)
	f.waitRoutable(t, tb.Key, true)
	for range 4 {
		require.True(t, f.Breaker(ta.Key).Allow())
		f.Breaker(ta.Key).Record(http.StatusBadGateway, nil)
	}
	require.Equal(t, "open", f.BreakerState(ta.Key))
	handle := f.Breaker(ta.Key)
	removed := f.lookup(tb.Key)

	// ta survives with the same settings, tb goes, tc comes.
	c := newBackend(t, http.StatusServiceUnavailable)
	tc := httpTarget(c, "v3", fastHealth(2, 2))
	f.Update([]Target{ta, tc})

	assert.True(t, f.Healthy(ta.Key), "health survives")
	assert.Equal(t, "open", f.BreakerState(ta.Key), "breaker state survives")
	assert.Same(t, handle, f.Breaker(ta.Key), "the breaker handle survives")
	assert.False(t, f.Healthy(tb.Key), "removed keys are unknown")
	assert.Nil(t, f.Breaker(tb.Key))
	assert.Equal(t, "", f.BreakerState(tb.Key))
	select {
	case <-removed.probeDone:
	case <-time.After(waitFor):
		t.Fatal("the removed endpoint's prober did not end")
	}
	seen := b.probes.Load()
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, seen, b.probes.Load(), "the removed endpoint is not probed any more")
	assert.False(t, f.Routable(tc.Key), "the new endpoint waits for its first pass")
}

func TestUpdateRestartsProberOnChangedSettings(t *testing.T) {
	b := newBackend(t, http.StatusOK)
	f := newFixture(t)
	h := fastHealth(2, 2)
	h.Interval = time.Hour
	tg := httpTarget(b, "v1", h)
	f.Update([]Target{tg})
	f.run(t)
	f.waitRoutable(t, tg.Key, true)
	require.Equal(t, int64(1), b.probes.Load())

	f.Update([]Target{tg}) // unchanged: no restart, no extra probe
	time.Sleep(30 * time.Millisecond)
	assert.Equal(t, int64(1), b.probes.Load())

	tg.Health.Interval = 10 * time.Millisecond
	b.status.Store(http.StatusInternalServerError)
	f.Update([]Target{tg})
	assert.True(t, f.Healthy(tg.Key), "a restart keeps the health state")
	require.Eventually(t, func() bool { return b.probes.Load() >= 4 }, waitFor, tick, "the new interval applies")
	f.waitRoutable(t, tg.Key, false)
	f.changes.waitChanges(t, tg.Key, true, false)
}

func TestUpdateBreakerConfigRebuildsKeepingState(t *testing.T) {
	f := newFixture(t)
	tg := Target{Key: "k", Model: "m", Version: "v", URL: "http://x", Breaker: testBreaker()}
	tg.Breaker.OpenFor = time.Hour
	f.Update([]Target{tg})
	br := f.Breaker("k")
	for range 4 {
		br.Record(0, errors.New("connection refused"))
	}
	require.Equal(t, "open", f.BreakerState("k"))

	tg.Breaker.MinRequests = 2
	f.Update([]Target{tg})
	assert.Equal(t, "open", f.BreakerState("k"), "an open breaker stays open across a rebuild")
	assert.False(t, br.Allow(), "the old handle drives the rebuilt breaker")

	f.Reset("", "", "")
	br.Record(http.StatusOK, nil)
	br.Record(http.StatusInternalServerError, nil)
	assert.Equal(t, "open", f.BreakerState("k"), "the rebuilt breaker opens at the new min_requests")
}

func TestUpdateBeforeAndAfterRun(t *testing.T) {
	b := newBackend(t, http.StatusOK)
	f := newFixture(t)
	tg := httpTarget(b, "v1", fastHealth(1, 1))
	f.Update([]Target{tg})
	time.Sleep(30 * time.Millisecond)
	assert.Zero(t, b.probes.Load(), "nothing is probed before Run")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	f.waitRoutable(t, tg.Key, true)
	f.changes.waitChanges(t, tg.Key, true)
	cancel()
	<-done

	f.Run(context.Background()) // a second Run returns at once
	seen := b.probes.Load()
	f.Update([]Target{tg, httpTarget(b, "v2", fastHealth(1, 1))})
	time.Sleep(30 * time.Millisecond)
	assert.Equal(t, seen, b.probes.Load(), "nothing is probed after Run")
	assert.True(t, f.Routable(tg.Key), "state stays readable")
}

func TestDuplicateKeysLastWins(t *testing.T) {
	f := newFixture(t)
	a := Target{Model: "m", Version: "v", URL: "http://x", Breaker: testBreaker()}
	b := a
	b.Breaker.OpenFor = time.Hour
	f.Update([]Target{a, b})
	key := Key("m", "v", "http://x")
	require.NotNil(t, f.Breaker(key), "an empty Key is derived")
	assert.Equal(t, time.Hour, f.lookup(key).cfg.Breaker.OpenFor)
}
