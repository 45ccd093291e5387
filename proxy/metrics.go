package proxy

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vaneproxy/vane/judge"
	"github.com/vaneproxy/vane/routing"
)

// Metrics are the data plane's Prometheus metrics. All are registered on the
// injected registerer; label values are bounded by the config (model and
// version names) and by HTTP status codes.
type Metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	weight         *prometheus.GaugeVec
	share          *prometheus.GaugeVec
	upstreamErrors *prometheus.CounterVec
	reloadOK       prometheus.Gauge
	reloads        *prometheus.CounterVec
	reloadTime     prometheus.Gauge
	retries        *prometheus.CounterVec
	budgetExceeded *prometheus.CounterVec
	endpoints      *endpointVecs          // see metrics_endpoint.go
	grpcRequests   *prometheus.CounterVec // see grpcerror.go
}

// NewRegistry returns a registry with the Go runtime and process
// collectors, the one `vane serve` and `vane demo` expose on /metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewMetrics creates and registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vane_requests_total",
			Help: "Requests answered, by model, version and HTTP status code. Requests that matched no model have empty model and version; requests refused before a version was chosen have an empty version.",
		}, []string{"model", "version", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vane_request_duration_seconds",
			Help:    "Time from the request's arrival to the last byte of the answer, by model and version.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"model", "version"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vane_version_weight",
			Help: "Configured relative weight of each version.",
		}, []string{"model", "version"}),
		share: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vane_version_share",
			Help: "Fraction 0..1 of the model's weighted traffic that each version receives after health.",
		}, []string{"model", "version"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vane_upstream_errors_total",
			Help: "Upstream exchanges that failed before an answer, by reason (connect, reset, timeout, other).",
		}, []string{"model", "version", "reason"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vane_config_last_reload_successful",
			Help: "1 when the last config load succeeded, 0 when it was rejected and the previous config kept serving.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vane_config_reloads_total",
			Help: "Config loads attempted after start, by result (success, failure, unchanged: the file's bytes had not changed).",
		}, []string{"result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vane_retries_total",
			Help: "Retries sent, by model and the version whose attempt failed.",
		}, []string{"model", "version"}),
		budgetExceeded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vane_retry_budget_exceeded_total",
			Help: "Retries not sent because the model's retry budget was spent.",
		}, []string{"model", "version"}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vane_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful config load.",
		}),
		endpoints: newEndpointVecs(),
		grpcRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vane_grpc_requests_total",
			Help: "gRPC calls answered, by model, version and grpc-status (0..16, or unknown when the answer carried none): vane_requests_total counts them by HTTP status, which is 200 for most gRPC failures.",
		}, []string{"model", "version", "grpc_code"}),
	}
	for _, c := range append(m.endpoints.collectors(), m.requests, m.duration, m.weight, m.share,
		m.grpcRequests, m.upstreamErrors, m.reloadOK, m.reloads, m.reloadTime, m.retries, m.budgetExceeded) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	m.reloads.WithLabelValues("unchanged")
	return m, nil
}

// reloaded records the outcome of a config load.
func (m *Metrics) reloaded(ok bool, at time.Time, initial bool) {
	if ok {
		m.reloadOK.Set(1)
		m.reloadTime.Set(float64(at.UnixNano()) / 1e9)
	} else {
		m.reloadOK.Set(0)
	}
	if initial {
		return
	}
	if ok {
		m.reloads.WithLabelValues("success").Inc()
	} else {
		m.reloads.WithLabelValues("failure").Inc()
	}
}

// maxCode bounds the status codes with a cached counter; others share "other".
const maxCode = 1000

// versionMetrics holds the label children of one (model, version), resolved
// when the snapshot is built so the request path does no label lookups.
type versionMetrics struct {
	m        *Metrics
	model    string
	version  string
	duration prometheus.Observer
	// codes caches the requests_total child per status code, filled on
	// first use; a race only resolves the same child twice. The cache
	// (8 KiB) is allocated at the first request: 10,000 models that get
	// no traffic cost nothing.
	codes atomic.Pointer[codeCache]
	// grpc caches the vane_grpc_requests_total child per grpc_code label
	// (grpcCodeLabels), filled on first use like codes.
	grpc [len(grpcCodeLabels)]atomic.Pointer[prometheus.Counter]
	errs [len(reasons)]prometheus.Counter // by upstreamReason, see reasons
	// retries and budgetExceeded are nil for the version-less entries.
	retries        prometheus.Counter
	budgetExceeded prometheus.Counter
	// evidence reads rec for a rollout's gates; nil when the model has no
	// rollout.
	evidence atomic.Pointer[versionEvidence]
	// rec feeds GET /compare; nil for the version-less entries.
	rec *judge.Recorder
}

// codeCache is a versionMetrics' requests_total children by status code.
type codeCache [maxCode]atomic.Pointer[prometheus.Counter]

var reasons = [...]string{"connect", "reset", "timeout", "too_large", "other"}

func (m *Metrics) forVersion(model, version string) *versionMetrics {
	vm := &versionMetrics{m: m, model: model, version: version}
	if version == "" {
		// Requests refused before a version was chosen are counted, but
		// have neither upstream latency nor upstream errors.
		return vm
	}
	vm.duration = m.duration.WithLabelValues(model, version)
	vm.retries = m.retries.WithLabelValues(model, version)
	vm.budgetExceeded = m.budgetExceeded.WithLabelValues(model, version)
	for i, r := range reasons {
		vm.errs[i] = m.upstreamErrors.WithLabelValues(model, version, r)
	}
	return vm
}

// observe counts one answered request.
func (vm *versionMetrics) observe(code int, d time.Duration) {
	vm.counter(code).Inc()
	vm.rec.Record(code, d)
	if vm.version != "" {
		vm.duration.Observe(d.Seconds())
	}
	if ev := vm.evidence.Load(); ev != nil && ev.rec != vm.rec {
		ev.rec.Record(code, d) // a recorder of the evidence's own: vm.rec already counted it
	}
}

func (vm *versionMetrics) counter(code int) prometheus.Counter {
	if code < 0 || code >= maxCode {
		return vm.m.requests.WithLabelValues(vm.model, vm.version, "other")
	}
	cc := vm.codes.Load()
	if cc == nil {
		vm.codes.CompareAndSwap(nil, new(codeCache))
		cc = vm.codes.Load()
	}
	if c := cc[code].Load(); c != nil {
		return *c
	}
	c := vm.m.requests.WithLabelValues(vm.model, vm.version, strconv.Itoa(code))
	cc[code].Store(&c)
	return c
}

// upstreamError counts one failed upstream exchange.
func (vm *versionMetrics) upstreamError(err error) {
	if vm.version == "" || clientFault(err) {
		return
	}
	r := upstreamReason(err)
	for i, name := range reasons {
		if name == r {
			vm.errs[i].Inc()
			return
		}
	}
}

// publishWeights sets the weight and share gauges of a snapshot and deletes
// the series of versions that are gone.
func (m *Metrics) publishWeights(s *snapshot, prev *snapshot) {
	live := map[[2]string]bool{}
	for _, mod := range s.table.Models() {
		m.publishModel(mod)
		for _, v := range mod.Versions {
			live[[2]string{mod.Name, v.Name}] = true
		}
	}
	if prev == nil {
		return
	}
	forgetGone(s, prev)
	for _, mod := range prev.table.Models() {
		for _, v := range mod.Versions {
			if !live[[2]string{mod.Name, v.Name}] {
				m.weight.DeleteLabelValues(mod.Name, v.Name)
				m.share.DeleteLabelValues(mod.Name, v.Name)
			}
		}
	}
}

// publishModel sets the weight and share gauges of one model's versions.
func (m *Metrics) publishModel(mod *routing.Model) {
	if mod == nil {
		return
	}
	shares := mod.Shares()
	for i, v := range mod.Versions {
		m.weight.WithLabelValues(mod.Name, v.Name).Set(v.Weight)
		m.share.WithLabelValues(mod.Name, v.Name).Set(shares[i])
	}
}

// forgetGone deletes the series of the models and versions prev served and
// s does not: a removed model's request counts, latencies, retries and
// upstream errors leave /metrics with it. Each deletion names its labels
// exactly (DeletePartialMatch scans every series: O(n²) for n removals).
func forgetGone(s, prev *snapshot) {
	live := map[*versionMetrics]bool{}
	for mi, row := range s.metrics {
		for _, vm := range row {
			live[vm] = true
		}
		live[s.noVersion[mi]] = true
	}
	for mi, row := range prev.metrics {
		for _, vm := range row {
			if !live[vm] {
				vm.forget()
			}
		}
		if vm := prev.noVersion[mi]; !live[vm] {
			vm.forget()
		}
	}
	liveEM := make(map[*endpointMetrics]bool, len(s.endpoints))
	for _, em := range s.endpoints {
		liveEM[em] = true
	}
	for _, em := range prev.endpoints {
		if !liveEM[em] {
			em.forget()
		}
	}
}

// forget deletes every series of vm's (model, version).
func (vm *versionMetrics) forget() {
	m := vm.m
	if cc := vm.codes.Load(); cc != nil {
		for code := range cc {
			if cc[code].Load() != nil {
				m.requests.DeleteLabelValues(vm.model, vm.version, strconv.Itoa(code))
			}
		}
	}
	m.requests.DeleteLabelValues(vm.model, vm.version, "other")
	if vm.version == "" {
		return
	}
	m.duration.DeleteLabelValues(vm.model, vm.version)
	m.endpoints.upstream.DeleteLabelValues(vm.model, vm.version)
	for _, c := range grpcCodeLabels {
		m.grpcRequests.DeleteLabelValues(vm.model, vm.version, c)
	}
	m.retries.DeleteLabelValues(vm.model, vm.version)
	m.budgetExceeded.DeleteLabelValues(vm.model, vm.version)
	for _, r := range reasons {
		m.upstreamErrors.DeleteLabelValues(vm.model, vm.version, r)
	}
}
