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
# HELP vane_circuit_breaker_open Whether the endpoint's circuit breaker is open (1) or closed or half-open (0).
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
