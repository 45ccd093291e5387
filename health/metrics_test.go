package health

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// counterValue sums the counter name over the series whose result label is
// result.
func counterValue(t *testing.T, g prometheus.Gatherer, name, result string) float64 {
	t.Helper()
	return sumWhere(t, g, name, "result", result)
}

// transitions sums vane_circuit_breaker_transitions_total{to=to}.
func transitions(t *testing.T, g prometheus.Gatherer, to string) float64 {
	t.Helper()
	return sumWhere(t, g, "vane_circuit_breaker_transitions_total", "to", to)
}

func sumWhere(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func TestMetrics(t *testing.T) {
	up, down := newBackend(t, http.StatusOK), newBackend(t, http.StatusInternalServerError)
	f := newFixture(t)
	tu, td := httpTarget(up, "v1", fastHealth(1, 1)), httpTarget(down, "v2", fastHealth(1, 1))
	f.Update([]Target{tu, td})
	f.run(t)
	f.waitRoutable(t, tu.Key, true)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(f.metrics.probes.WithLabelValues("iris", "v2", down.URL, "fail")) >= 2
	}, waitFor, tick)
	for range 4 {
		attempt(f.Breaker(tu.Key), 0, http.ErrHandlerTimeout)
	}
	require.Equal(t, "open", f.BreakerState(tu.Key))

	want := `
# HELP vane_circuit_breaker_open 1 when the endpoint's circuit breaker is open, or half-open while the endpoint fails its health probes (no trial request can reach it); else 0.
# TYPE vane_circuit_breaker_open gauge
vane_circuit_breaker_open{endpoint="UP",model="iris",version="v1"} 1
vane_circuit_breaker_open{endpoint="DOWN",model="iris",version="v2"} 0
# HELP vane_endpoint_healthy Whether the endpoint passes its active health checks (1) or not (0).
# TYPE vane_endpoint_healthy gauge
vane_endpoint_healthy{endpoint="UP",model="iris",version="v1"} 1
vane_endpoint_healthy{endpoint="DOWN",model="iris",version="v2"} 0
# HELP vane_circuit_breaker_transitions_total Circuit breaker state changes of the endpoint, by the state entered (closed, open, half-open).
# TYPE vane_circuit_breaker_transitions_total counter
vane_circuit_breaker_transitions_total{endpoint="UP",model="iris",to="closed",version="v1"} 0
vane_circuit_breaker_transitions_total{endpoint="UP",model="iris",to="half-open",version="v1"} 0
vane_circuit_breaker_transitions_total{endpoint="UP",model="iris",to="open",version="v1"} 1
vane_circuit_breaker_transitions_total{endpoint="DOWN",model="iris",to="closed",version="v2"} 0
vane_circuit_breaker_transitions_total{endpoint="DOWN",model="iris",to="half-open",version="v2"} 0
vane_circuit_breaker_transitions_total{endpoint="DOWN",model="iris",to="open",version="v2"} 0
`
	want = strings.NewReplacer("UP", up.URL, "DOWN", down.URL).Replace(want)
	// Label order in the exposition is by URL; compare sorted series.
	assert.NoError(t, testutil.GatherAndCompare(f.reg, strings.NewReader(want),
		"vane_circuit_breaker_open", "vane_endpoint_healthy", "vane_circuit_breaker_transitions_total"))

	assert.Positive(t, testutil.ToFloat64(f.metrics.probes.WithLabelValues("iris", "v1", up.URL, "pass")))
	assert.Equal(t, 2, testutil.CollectAndCount(f.metrics.duration), "one histogram per version")

	// Removing v2 deletes its series, the per-version histogram included.
	f.Update([]Target{tu})
	for name, n := range map[string]int{
		"vane_endpoint_healthy": 1, "vane_circuit_breaker_open": 1, "vane_health_probes_total": 2,
		"vane_circuit_breaker_transitions_total": 3, "vane_health_probe_duration_seconds": 1,
	} {
		got, err := testutil.GatherAndCount(f.reg, name)
		require.NoError(t, err)
		assert.Equal(t, n, got, name)
	}
}

// TestBreakerGaugesOfDeadEndpoint: an endpoint that fails its probes gets
// no traffic, so once its breaker turns half-open no trial request can
// close it; the contract gauge must keep reading 1 (it read 0 before), and
// the state enum must say half_open. A healthy endpoint's half-open breaker
// reads 0 (trial requests flow).
func TestBreakerGaugesOfDeadEndpoint(t *testing.T) {
	up, down := newBackend(t, http.StatusOK), newBackend(t, http.StatusInternalServerError)
	f := newFixture(t)
	tu, td := httpTarget(up, "v1", fastHealth(1, 1)), httpTarget(down, "v2", fastHealth(1, 1))
	f.Update([]Target{tu, td})
	state := func(tg Target, st string) float64 {
		return testutil.ToFloat64(f.metrics.state.WithLabelValues("iris", tg.Version, tg.URL, st))
	}
	open := func(tg Target) float64 {
		return testutil.ToFloat64(f.metrics.open.WithLabelValues("iris", tg.Version, tg.URL))
	}
	assert.Equal(t, 1.0, state(td, "closed"), "a new breaker is closed")
	assert.Equal(t, 0.0, state(td, "open")+state(td, "half_open"))
	f.run(t)
	f.waitRoutable(t, tu.Key, true)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(f.metrics.probes.WithLabelValues("iris", "v2", down.URL, "fail")) >= 1
	}, waitFor, tick)
	for _, tg := range []Target{tu, td} {
		for range 4 {
			attempt(f.Breaker(tg.Key), 0, http.ErrHandlerTimeout)
		}
	}
	// open_for is 100ms: both turn half-open by themselves.
	require.Eventually(t, func() bool {
		return f.BreakerState(td.Key) == "half-open" && f.BreakerState(tu.Key) == "half-open"
	}, waitFor, tick)
	require.Eventually(t, func() bool { return open(tu) == 0 }, waitFor, tick)
	assert.Equal(t, 1.0, open(td), "a half-open breaker of a dead endpoint is shut")
	assert.Equal(t, 0.0, open(tu), "a half-open breaker of a live endpoint lets trials through")
	for _, tg := range []Target{tu, td} {
		assert.Equal(t, 1.0, state(tg, "half_open"), tg.Version)
		assert.Equal(t, 0.0, state(tg, "open")+state(tg, "closed"), tg.Version)
	}
	// Removing the endpoint deletes its state series.
	f.Update([]Target{tu})
	n, err := testutil.GatherAndCount(f.reg, "vane_circuit_breaker_state")
	require.NoError(t, err)
	assert.Equal(t, 3, n)
}

func TestMetricsRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := NewChecker(Options{Registerer: reg})
	require.NoError(t, err)
	_, err = NewChecker(Options{Registerer: reg})
	assert.Error(t, err, "a second Checker on one registry collides")
	_, err = NewChecker(Options{})
	assert.NoError(t, err, "a nil Registerer registers nothing")
}

func TestMetricsLint(t *testing.T) {
	f := newFixture(t)
	f.Update([]Target{{Model: "m", Version: "v", URL: "http://x", Breaker: testBreaker()}})
	problems, err := testutil.GatherAndLint(f.reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}
