package proxy

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/judge"
	"github.com/vaneproxy/vane/monitor"
)

// comparison is the state behind version comparison: each version's
// request recorder (fed by versionMetrics.observe), each shadow version's
// answer comparison, the ground-truth store, and their metrics. It lives
// as long as the Server; reloads keep it, so figures survive weight
// changes.
type comparison struct {
	now   func() time.Time
	store *judge.Store
	met   *compareMetrics

	mu   sync.Mutex // guards recs, and the writing of shadows (entries are created, never removed)
	recs map[[2]string]*judge.Recorder
	// shadows is copied on write (under mu) so that the request path reads
	// it without a lock.
	shadows atomic.Pointer[map[[2]string]*shadowState]
}

// shadowState is one shadow version's comparison and its metric children.
type shadowState struct {
	stats     judge.Shadow
	results   map[string]prometheus.Counter // by result of vane_shadow_requests_total
	agreement prometheus.Gauge
	absDiff   prometheus.Observer
}

func newComparison(cfg *configs.Config, reg prometheus.Registerer, now func() time.Time) (*comparison, error) {
	met, err := newCompareMetrics(reg)
	if err != nil {
		return nil, err
	}
	c := &comparison{now: now, met: met,
		store: judge.NewStore(cfg.Feedback.MaxEntries, cfg.Feedback.TTL, now),
		recs:  map[[2]string]*judge.Recorder{}}
	c.shadows.Store(&map[[2]string]*shadowState{})
	return c, nil
}

// recorder returns the recorder of (model, version), creating it.
func (c *comparison) recorder(model, version string) *judge.Recorder {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := [2]string{model, version}
	r := c.recs[k]
	if r == nil {
		r = new(judge.Recorder)
		c.recs[k] = r
	}
	return r
}

// existingShadow is the comparison of a shadow version, nil when it has
// none; it creates nothing.
func (c *comparison) existingShadow(model, version string) *shadowState {
	return (*c.shadows.Load())[[2]string{model, version}]
}

// shadow returns the comparison of shadow version with its model's
// primaries, creating it. Finding an existing one takes no lock and does
// not allocate.
func (c *comparison) shadow(model, version string) *shadowState {
	k := [2]string{model, version}
	if s := (*c.shadows.Load())[k]; s != nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.shadows.Load()
	if s := old[k]; s != nil {
		return s
	}
	s := &shadowState{results: map[string]prometheus.Counter{},
		agreement: c.met.agreement.WithLabelValues(model, version),
		absDiff:   c.met.absDiff.WithLabelValues(model, version)}
	for _, r := range []string{shadowCompared, shadowDropped, shadowError, shadowTimeout} {
		s.results[r] = c.met.shadowRequests.WithLabelValues(model, version, r)
	}
	next := make(map[[2]string]*shadowState, len(old)+1)
	for key, v := range old {
		next[key] = v
	}
	next[k] = s
	c.shadows.Store(&next)
	return s
}

// forgetGone deletes the comparison series of the versions prev served
// and s does not, and the shadow state whose metric handles they were (a
// version added back later starts anew).
func (c *comparison) forgetGone(s, prev *snapshot) {
	live := map[[2]string]bool{}
	for _, m := range s.table.Models() {
		for _, v := range m.Versions {
			live[[2]string{m.Name, v.Name}] = true
		}
	}
	var gone [][2]string
	for _, m := range prev.table.Models() {
		for _, v := range m.Versions {
			if k := [2]string{m.Name, v.Name}; !live[k] {
				gone = append(gone, k)
			}
		}
	}
	if len(gone) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[[2]string]*shadowState, len(*c.shadows.Load()))
	for k, st := range *c.shadows.Load() {
		if live[k] {
			next[k] = st
		}
	}
	c.shadows.Store(&next)
	for _, k := range gone {
		c.met.agreement.DeleteLabelValues(k[0], k[1])
		c.met.absDiff.DeleteLabelValues(k[0], k[1])
		c.met.accuracy.DeleteLabelValues(k[0], k[1])
		c.met.mae.DeleteLabelValues(k[0], k[1])
		for _, r := range []string{shadowCompared, shadowDropped, shadowError, shadowTimeout} {
			c.met.shadowRequests.DeleteLabelValues(k[0], k[1], r)
		}
	}
}

// compareMetrics are the metrics of shadows and ground truth.
type compareMetrics struct {
	shadowRequests *prometheus.CounterVec
	agreement      *prometheus.GaugeVec
	absDiff        *prometheus.HistogramVec
	feedback       *prometheus.CounterVec
	accuracy       *prometheus.GaugeVec
	mae            *prometheus.GaugeVec
}

// The results of vane_shadow_requests_total.
const (
	shadowCompared = "compared"
	shadowDropped  = "dropped"
	shadowError    = "error"
	shadowTimeout  = "timeout"
)

func newCompareMetrics(reg prometheus.Registerer) (*compareMetrics, error) {
	m := &compareMetrics{
		shadowRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vane_shadow_requests_total",
			Help: "Copies of requests for shadow versions, by result: compared (answered and compared with the primary), dropped (queue full or body too large; never sent), error (no endpoint, transport error or 5xx), timeout (routing.shadow_timeout passed).",
		}, []string{"model", "version", "result"}),
		agreement: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vane_shadow_agreement_ratio",
			Help: "Share 0..1 of class-like prediction rows on which the shadow version agrees with the primary, since start.",
		}, []string{"model", "version"}),
		absDiff: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vane_shadow_abs_diff",
			Help:    "Absolute difference between the shadow's and the primary's numeric predictions, per row.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 10, 10),
		}, []string{"model", "version"}),
		feedback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vane_feedback_total",
			Help: "Ground-truth labels received on POST /feedback, by model (empty when the request id is unknown) and result: joined, unknown, expired, invalid.",
		}, []string{"model", "result"}),
		accuracy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vane_model_accuracy",
			Help: "Share 0..1 of labelled class-like rows the version predicted right, since start.",
		}, []string{"model", "version"}),
		mae: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vane_model_mae",
			Help: "Mean absolute error of the version's labelled numeric rows, since start.",
		}, []string{"model", "version"}),
	}
	for _, c := range []prometheus.Collector{m.shadowRequests, m.agreement, m.absDiff, m.feedback, m.accuracy, m.mae} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// CompareReport is the body of GET /compare.
type CompareReport struct {
	Model    string `json:"model"`
	Baseline string `json:"baseline"`
	// Alpha is the level of every test; the tests are always valid, so
	// polling does not raise the chance of a wrong verdict above it.
	Alpha    float64          `json:"alpha"`
	Versions []VersionCompare `json:"versions"`
}

// VersionCompare is one version in CompareReport.
type VersionCompare struct {
	Version string  `json:"version"`
	Weight  float64 `json:"weight"`
	Shadow  bool    `json:"shadow"`
	// Requests, Errors and ErrorRate count answers since start (IsError:
	// 5xx or none); Window covers the last judge.RecorderWindow answers.
	Requests  int64         `json:"requests"`
	Errors    int64         `json:"errors"`
	ErrorRate float64       `json:"error_rate"`
	Window    RequestWindow `json:"window"`
	// Accuracy is the ground-truth accuracy (nil before the first joined
	// label).
	Accuracy *judge.AccuracyReport `json:"accuracy"`
	// ShadowAgreement compares a shadow's answers with the primary's (nil
	// for versions that are not shadows).
	ShadowAgreement *judge.ShadowReport `json:"shadow_agreement"`
	// Drift is the drift monitor's state of the version.
	Drift DriftState `json:"drift"`
	// Tests compare the version with the baseline (empty for the
	// baseline itself).
	Tests []judge.Test `json:"tests"`
}

// RequestWindow is a version's last answers.
type RequestWindow struct {
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	P50       float64 `json:"p50_seconds"`
	P99       float64 `json:"p99_seconds"`
}

// DriftState summarises GET /drift for one version.
type DriftState struct {
	ReferenceReady  bool     `json:"reference_ready"`
	WindowsClosed   int      `json:"windows_closed"`
	Drifted         bool     `json:"drifted"`
	DriftedFeatures []string `json:"drifted_features"`
}

func (s *Server) serveCompare(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("model")
	if name == "" {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "the model query parameter is required"})
		return
	}
	snap := s.snap.Load()
	var mc *configs.Model
	for i := range snap.cfg.Models {
		if snap.cfg.Models[i].Name == name {
			mc = &snap.cfg.Models[i]
		}
	}
	if mc == nil {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such model", Model: name})
		return
	}
	base := r.URL.Query().Get("baseline")
	if base == "" {
		best := -1.0
		for _, v := range mc.Versions {
			if !v.Shadow && v.Weight > best {
				base, best = v.Name, v.Weight
			}
		}
	} else if mc.VersionIndex(base) < 0 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "baseline is not a version of the model", Model: name, Version: base})
		return
	}
	writeJSON(w, http.StatusOK, s.compare.report(mc, base, s.monitor.Report()))
}

// report builds GET /compare's answer for model mc against baseline.
func (c *comparison) report(mc *configs.Model, baseline string, drift monitor.Report) CompareReport {
	rep := CompareReport{Model: mc.Name, Baseline: baseline, Alpha: judge.Alpha, Versions: []VersionCompare{}}
	figs := make([]judge.Figures, len(mc.Versions))
	accs := make([]*judge.AccuracyReport, len(mc.Versions))
	bi := 0
	for i, v := range mc.Versions {
		figs[i] = c.recorder(mc.Name, v.Name).Figures()
		if a, ok := c.store.Accuracy(mc.Name, v.Name); ok {
			accs[i] = &a
		}
		if v.Name == baseline {
			bi = i
		}
	}
	for i, v := range mc.Versions {
		f := figs[i]
		vc := VersionCompare{Version: v.Name, Weight: v.Weight, Shadow: v.Shadow,
			Requests: f.Requests, Errors: f.Errors, ErrorRate: ratio(f.Errors, f.Requests),
			Window: RequestWindow{Requests: f.WindowRequests, Errors: f.WindowErrors,
				ErrorRate: ratio(f.WindowErrors, f.WindowRequests), P50: f.P50, P99: f.P99},
			Accuracy: accs[i], Drift: driftState(drift, mc.Name, v.Name), Tests: []judge.Test{}}
		if v.Shadow {
			sr := c.shadow(mc.Name, v.Name).stats.Report()
			vc.ShadowAgreement = &sr
		}
		if i != bi {
			vc.Tests = c.tests(figs[bi], f, accs[bi], accs[i])
		}
		rep.Versions = append(rep.Versions, vc)
	}
	return rep
}

// tests compares a candidate with the baseline: error rate and latency
// always, accuracy when both have labelled class-like rows.
func (c *comparison) tests(b, v judge.Figures, ba, va *judge.AccuracyReport) []judge.Test {
	out := []judge.Test{
		judge.TestProportions("error_rate", b.Errors, b.Requests, v.Errors, v.Requests, judge.TauErrorRate, true),
		judge.TestLatency(b.Latency, v.Latency),
	}
	if ba != nil && va != nil && ba.Cumulative.Labelled > 0 && va.Cumulative.Labelled > 0 {
		out = append(out, judge.TestProportions("accuracy",
			ba.Cumulative.Correct, ba.Cumulative.Labelled, va.Cumulative.Correct, va.Cumulative.Labelled,
			judge.TauAccuracy, false))
	}
	return out
}

func ratio(k, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return float64(k) / float64(n)
}

func driftState(r monitor.Report, model, version string) DriftState {
	d := DriftState{DriftedFeatures: []string{}}
	for _, m := range r.Models {
		if m.Model != model {
			continue
		}
		for _, v := range m.Versions {
			if v.Version != version {
				continue
			}
			d.ReferenceReady, d.WindowsClosed = v.ReferenceReady, v.WindowsClosed
			for _, f := range v.Features {
				if f.Drifted {
					d.Drifted = true
					d.DriftedFeatures = append(d.DriftedFeatures, f.Feature)
				}
			}
		}
	}
	return d
}
