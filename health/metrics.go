package health

import (
	"fmt"
	"sync"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the health package's Prometheus series. Label values come
// from the config (model and version names, endpoint URLs as configured), so
// their number is bounded by the config; series of removed endpoints are
// deleted.
type metrics struct {
	healthy     *prometheus.GaugeVec
	open        *prometheus.GaugeVec
	state       *prometheus.GaugeVec
	probes      *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	transitions *prometheus.CounterVec
}

// probeBuckets cover probes from sub-millisecond loopback answers up to the
// largest sensible health.timeout.
var probeBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// breakerStates are the values of the "to" label, in circuitbreaker.State
// order.
var breakerStates = [...]circuitbreaker.State{
	circuitbreaker.ClosedState, circuitbreaker.OpenState, circuitbreaker.HalfOpenState,
}

// newMetrics creates the series and registers them on reg; a nil reg leaves
// them unregistered (they still work, nobody scrapes them).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	ep := []string{"model", "version", "endpoint"}
	m := &metrics{
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vane_endpoint_healthy",
			Help: "Whether the endpoint passes its active health checks (1) or not (0).",
		}, ep),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vane_circuit_breaker_open",
			Help: "1 when the endpoint's circuit breaker is open, or half-open while the endpoint fails its health probes (no trial request can reach it); else 0.",
		}, ep),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vane_circuit_breaker_state",
			Help: "The endpoint's circuit breaker state: 1 on the series of the current state (closed, open, half_open), 0 on the others.",
		}, append(ep[:3:3], "state")),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vane_health_probes_total",
			Help: "Active health probes sent to the endpoint, by result (pass or fail).",
		}, append(ep[:3:3], "result")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vane_health_probe_duration_seconds",
			Help:    "Time an active health probe took, passing or failing.",
			Buckets: probeBuckets,
		}, []string{"model", "version"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vane_circuit_breaker_transitions_total",
			Help: "Circuit breaker state changes of the endpoint, by the state entered (closed, open, half-open).",
		}, append(ep[:3:3], "to")),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.healthy, m.open, m.state, m.probes, m.duration, m.transitions} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering health metrics: %w", err)
		}
	}
	return m, nil
}

// stateLabels are the values of vane_circuit_breaker_state's "state" label,
// in circuitbreaker.State order (Prometheus label values use "_", not "-").
var stateLabels = [len(breakerStates)]string{"closed", "open", "half_open"}

// series are one endpoint's children of the vectors, resolved once so that
// probes and breaker transitions do no label lookups. After the endpoint is
// removed they are detached from the vectors: late writes go nowhere.
type series struct {
	healthy, open prometheus.Gauge
	pass, fail    prometheus.Counter
	duration      prometheus.Observer
	to            [len(breakerStates)]prometheus.Counter

	// states are the vane_circuit_breaker_state series, by state.
	states [len(breakerStates)]prometheus.Gauge
	// breakerMu serialises setBreaker, so that the breaker gauges always
	// end on the latest (state, healthy) pair, whichever of a probe and a
	// breaker transition publishes last.
	breakerMu sync.Mutex
}

// forEndpoint creates (at zero) and returns the series of one endpoint.
func (m *metrics) forEndpoint(model, version, url string) *series {
	s := &series{
		healthy:  m.healthy.WithLabelValues(model, version, url),
		open:     m.open.WithLabelValues(model, version, url),
		pass:     m.probes.WithLabelValues(model, version, url, "pass"),
		fail:     m.probes.WithLabelValues(model, version, url, "fail"),
		duration: m.duration.WithLabelValues(model, version),
	}
	for i, st := range breakerStates {
		s.to[i] = m.transitions.WithLabelValues(model, version, url, st.String())
		s.states[i] = m.state.WithLabelValues(model, version, url, stateLabels[i])
	}
	return s
}

// deleteEndpoint removes one endpoint's series (not the per-version
// histogram; see deleteVersion).
func (m *metrics) deleteEndpoint(model, version, url string) {
	m.healthy.DeleteLabelValues(model, version, url)
	m.open.DeleteLabelValues(model, version, url)
	m.probes.DeleteLabelValues(model, version, url, "pass")
	m.probes.DeleteLabelValues(model, version, url, "fail")
	for i, st := range breakerStates {
		m.transitions.DeleteLabelValues(model, version, url, st.String())
		m.state.DeleteLabelValues(model, version, url, stateLabels[i])
	}
}

// deleteVersion removes the probe-duration histogram of a version that has
// no endpoint left.
func (m *metrics) deleteVersion(model, version string) {
	m.duration.DeleteLabelValues(model, version)
}

// transition counts one breaker state change.
func (s *series) transition(to circuitbreaker.State) {
	if int(to) >= 0 && int(to) < len(s.to) {
		s.to[to].Inc()
	}
}

// setBreaker publishes the breaker gauges of one endpoint from its current
// breaker state and health, read by the callers under breakerMu. The open
// gauge also reads 1 for a half-open breaker on an endpoint that fails its
// probes: routing sends such an endpoint no traffic, so no trial request
// can ever close its breaker, and it is as shut as an open one.
func (s *series) setBreaker(state func() circuitbreaker.State, healthy func() bool) {
	s.breakerMu.Lock()
	defer s.breakerMu.Unlock()
	st := state()
	shut := st == circuitbreaker.OpenState || (st == circuitbreaker.HalfOpenState && !healthy())
	s.open.Set(boolGauge(shut))
	for i, g := range s.states {
		g.Set(boolGauge(breakerStates[i] == st))
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
