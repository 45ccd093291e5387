package proxy

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaneproxy/vane/routing"
)

// endpointVecs are the per-endpoint and per-attempt series: what each
// configured endpoint answered, however retries then dressed the answer
// up for the client. Endpoint label values are the URLs as configured, so
// their number is bounded by the config.
type endpointVecs struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	retries  *prometheus.CounterVec
	upstream *prometheus.HistogramVec
}

func newEndpointVecs() *endpointVecs {
	ep := []string{"model", "version", "endpoint"}
	return &endpointVecs{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vane_endpoint_requests_total",
			Help: "Upstream attempts by endpoint and the endpoint's HTTP status code (\"error\" when it gave no answer: refused, reset, timed out). Every retry is an attempt of its own.",
		}, append(ep[:3:3], "code")),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vane_endpoint_upstream_errors_total",
			Help: "Upstream attempts that got no answer from the endpoint, by reason (connect, reset, timeout, other).",
		}, append(ep[:3:3], "reason")),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vane_endpoint_retries_total",
			Help: "Retries sent because an attempt on this endpoint failed.",
		}, ep),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vane_upstream_duration_seconds",
			Help:    "Time of one upstream attempt, from sending the request to the answer (the whole body when it is read whole, the headers when it streams), by model and version. vane_request_duration_seconds minus this is vane's own time plus retries.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"model", "version"}),
	}
}

func (e *endpointVecs) collectors() []prometheus.Collector {
	return []prometheus.Collector{e.requests, e.errors, e.retries, e.upstream}
}

// maxEndpointCode bounds the status codes with a cached counter.
const maxEndpointCode = 600

// endpointMetrics holds one endpoint's label children, resolved when the
// snapshot is built so that the request path does no label lookups.
type endpointMetrics struct {
	vecs                *endpointVecs
	model, version, url string
	now                 func() time.Time
	// codes caches the requests child per status code, filled on first
	// use; a race only resolves the same child twice.
	// The cache is allocated at the endpoint's first answer: 4.8 KB per
	// endpoint would weigh on configs of thousands that mostly idle.
	codes    atomic.Pointer[[maxEndpointCode]atomic.Pointer[prometheus.Counter]]
	failed   prometheus.Counter               // code="error"
	errs     [len(reasons)]prometheus.Counter // by upstreamReason, see reasons
	retries  prometheus.Counter
	upstream prometheus.Observer
}

// forEndpoint resolves the series of one endpoint.
func (e *endpointVecs) forEndpoint(model, version, url string, now func() time.Time) *endpointMetrics {
	em := &endpointMetrics{vecs: e, model: model, version: version, url: url, now: now,
		failed:   e.requests.WithLabelValues(model, version, url, "error"),
		retries:  e.retries.WithLabelValues(model, version, url),
		upstream: e.upstream.WithLabelValues(model, version),
	}
	for i, r := range reasons {
		em.errs[i] = e.errors.WithLabelValues(model, version, url, r)
	}
	return em
}

func (em *endpointMetrics) code(code int) prometheus.Counter {
	if code < 0 || code >= maxEndpointCode {
		return em.vecs.requests.WithLabelValues(em.model, em.version, em.url, "other")
	}
	cc := em.codes.Load()
	if cc == nil {
		em.codes.CompareAndSwap(nil, new([maxEndpointCode]atomic.Pointer[prometheus.Counter]))
		cc = em.codes.Load()
	}
	if c := cc[code].Load(); c != nil {
		return *c
	}
	c := em.vecs.requests.WithLabelValues(em.model, em.version, em.url, strconv.Itoa(code))
	cc[code].Store(&c)
	return c
}

// sent marks the moment an attempt on ep leaves (see attempt.acquire).
func (a *attempt) sent(ep *routing.Endpoint) {
	a.sentAt = a.snap.endpoints[ep.ID].now().UnixNano()
}

// forget deletes every series of em's endpoint.
func (em *endpointMetrics) forget() {
	v := em.vecs
	if cc := em.codes.Load(); cc != nil {
		for code := range cc {
			if cc[code].Load() != nil {
				v.requests.DeleteLabelValues(em.model, em.version, em.url, strconv.Itoa(code))
			}
		}
	}
	v.requests.DeleteLabelValues(em.model, em.version, em.url, "error")
	v.requests.DeleteLabelValues(em.model, em.version, em.url, "other")
	v.retries.DeleteLabelValues(em.model, em.version, em.url)
	for _, r := range reasons {
		v.errors.DeleteLabelValues(em.model, em.version, em.url, r)
	}
}

// observeAttempt counts one attempt on ep and its upstream time; a retry
// is charged to the endpoint whose attempt came before it. An attempt that
// never left (status 0 and no error: vane could not build the request) is
// not counted.
func (a *attempt) observeAttempt(ep *routing.Endpoint, status int, err error) {
	if status == 0 && err == nil {
		return
	}
	em := a.snap.endpoints[ep.ID]
	if a.prev != nil {
		a.snap.endpoints[a.prev.ID].retries.Inc()
	}
	a.prev = ep
	if a.sentAt != 0 {
		d := time.Duration(em.now().UnixNano() - a.sentAt)
		em.upstream.Observe(d.Seconds())
		a.log.attempted(ep, d)
	}
	if err != nil {
		em.failed.Inc()
		r := upstreamReason(err)
		for i, name := range reasons {
			if name == r {
				em.errs[i].Inc()
			}
		}
		return
	}
	em.code(status).Inc()
}

// inFlightCollector reports each endpoint's in-flight requests at scrape
// time from the snapshot being served: no cost on the request path.
type inFlightCollector struct {
	s    *Server
	desc *prometheus.Desc
}

func newInFlightCollector(s *Server) *inFlightCollector {
	return &inFlightCollector{s: s, desc: prometheus.NewDesc("vane_endpoint_in_flight",
		"Requests sent to the endpoint and not yet answered whole (open streams included).",
		[]string{"model", "version", "endpoint"}, nil)}
}

func (c *inFlightCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *inFlightCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.s.snap.Load()
	if snap == nil {
		return
	}
	for _, ep := range snap.table.Endpoints() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(ep.InFlight()),
			ep.Model, ep.Version, ep.URL)
	}
}
