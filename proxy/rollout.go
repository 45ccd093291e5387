package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/judge"
	"github.com/vaneproxy/vane/monitor"
	"github.com/vaneproxy/vane/rollout"
)

// The rollout controller's evidence: per version of a model under
// rollout, the answers, 5xx answers and latencies since its step started.
// They are read from the version's judge.Recorder, the one GET /compare
// reads, which versionMetrics.observe feeds once per answer: a rollout
// adds no work to the request path.

// versionEvidence is one version's figures: its recorder's counts minus
// those it had when the current step started.
type versionEvidence struct {
	rec  *judge.Recorder
	step atomic.Pointer[judge.Totals] // rec's counts when the step started
}

// newVersionEvidence reads rec, or a recorder of its own when rec is nil
// (evidence built without a comparison); the step starts now.
func newVersionEvidence(rec *judge.Recorder) *versionEvidence {
	if rec == nil {
		rec = new(judge.Recorder)
	}
	e := &versionEvidence{rec: rec}
	e.startStep()
	return e
}

func (e *versionEvidence) startStep() {
	t := e.rec.Totals()
	e.step.Store(&t)
}

// traffic reads the current step's figures; p99 is the upper bound of the
// latency bucket holding the 99th percentile.
func (e *versionEvidence) traffic() (rollout.Traffic, bool) {
	base, cur := e.step.Load(), e.rec.Totals()
	t := rollout.Traffic{Requests: cur.Requests - base.Requests, Errors: cur.Errors - base.Errors}
	if t.Requests <= 0 {
		return rollout.Traffic{}, false
	}
	var total int64
	for i := range cur.Latency {
		cur.Latency[i] -= base.Latency[i]
		total += cur.Latency[i]
	}
	rank := (total*99 + 99) / 100 // ceil(0.99 * total)
	var seen int64
	for i, n := range cur.Latency {
		if seen += n; seen >= rank {
			t.P99 = judge.BucketUpper(i)
			break
		}
	}
	return t, true
}

// evidence is the proxy's rollout.Evidence.
type evidence struct {
	mon *monitor.Monitor
	// cmp holds shadow comparisons and feedback accuracy; nil in tests
	// that build evidence alone.
	cmp *comparison
	// mu guards byKey, filled as snapshots are built and read by the
	// controller.
	mu    sync.Mutex
	byKey map[[2]string]*versionEvidence
}

var _ rollout.Evidence = (*evidence)(nil)

func newEvidence(mon *monitor.Monitor, cmp *comparison) *evidence {
	return &evidence{mon: mon, cmp: cmp, byKey: map[[2]string]*versionEvidence{}}
}

// forVersion returns the counters of a version when its model has a
// rollout, nil otherwise (and forgets it).
func (e *evidence) forVersion(model, version string, on bool) *versionEvidence {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := [2]string{model, version}
	if !on {
		delete(e.byKey, k)
		return nil
	}
	ve := e.byKey[k]
	if ve == nil {
		var rec *judge.Recorder
		if e.cmp != nil {
			rec = e.cmp.recorder(model, version)
		}
		ve = newVersionEvidence(rec)
		e.byKey[k] = ve
	}
	return ve
}

func (e *evidence) get(model, version string) *versionEvidence {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.byKey[[2]string{model, version}]
}

func (e *evidence) StartStep(model string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, ve := range e.byKey {
		if k[0] == model {
			ve.startStep()
		}
	}
}

func (e *evidence) Traffic(model, version string) (rollout.Traffic, bool) {
	ve := e.get(model, version)
	if ve == nil {
		return rollout.Traffic{}, false
	}
	return ve.traffic()
}

// Drift reads the monitor's alert state: drifted when any feature of the
// version has an alert; no data until a window was compared with a ready
// reference.
func (e *evidence) Drift(model, version string) (bool, bool) {
	for _, m := range e.mon.Report().Models {
		if m.Model != model {
			continue
		}
		for _, v := range m.Versions {
			if v.Version != version {
				continue
			}
			if !v.ReferenceReady || v.WindowsClosed == 0 {
				return false, false
			}
			for _, f := range v.Features {
				if f.Drifted {
					return true, true
				}
			}
			return false, true
		}
	}
	return false, false
}

// ShadowAgreement is the cumulative agreement of version's answers with
// the primaries' while it was a shadow (a candidate is typically shadowed
// before it is rolled out); no data when it was never compared.
func (e *evidence) ShadowAgreement(model, version string) (float64, bool) {
	if e.cmp == nil {
		return 0, false
	}
	st := e.cmp.existingShadow(model, version)
	if st == nil {
		return 0, false
	}
	f := st.stats.Report().Cumulative
	if f.Rows == 0 {
		return 0, false
	}
	return f.Agreement, true
}

// Accuracy is version's cumulative accuracy on labelled feedback.
func (e *evidence) Accuracy(model, version string) (correct, labelled int64, ok bool) {
	if e.cmp == nil {
		return 0, 0, false
	}
	r, ok := e.cmp.store.Accuracy(model, version)
	if !ok || r.Cumulative.Labelled == 0 {
		return 0, 0, false
	}
	return r.Cumulative.Correct, r.Cumulative.Labelled, true
}

// rolloutNotifier posts rollout transitions to the model's
// monitor.webhook_url in Alertmanager's POST /api/v2/alerts shape, from
// its own goroutine; a full queue drops (and logs) the event.
type rolloutNotifier struct {
	client *http.Client
	log    *slog.Logger
	cfg    func() *configs.Config
	queue  chan rollout.Event
}

func newRolloutNotifier(log *slog.Logger, cfg func() *configs.Config) *rolloutNotifier {
	return &rolloutNotifier{client: &http.Client{Timeout: 10 * time.Second}, log: log, cfg: cfg,
		queue: make(chan rollout.Event, 64)}
}

// notify queues e without blocking.
func (n *rolloutNotifier) notify(e rollout.Event) {
	select {
	case n.queue <- e:
	default:
		n.log.Warn("rollout webhook queue full; event not sent", "model", e.Model, "result", e.Result)
	}
}

// run delivers queued events until ctx is done.
func (n *rolloutNotifier) run(ctx context.Context) {
	defer n.client.CloseIdleConnections()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-n.queue:
			n.deliver(ctx, e)
		}
	}
}

func (n *rolloutNotifier) deliver(ctx context.Context, e rollout.Event) {
	url := ""
	for _, m := range n.cfg().Models {
		if m.Name == e.Model {
			url = m.Monitor.WebhookURL
		}
	}
	if url == "" {
		return
	}
	alert := map[string]any{
		"labels": map[string]string{"alertname": "VaneRollout", "model": e.Model, "version": e.Candidate,
			"result": e.Result, "severity": map[bool]string{true: "warning", false: "info"}[e.Result == rollout.ResultRolledBack || e.Result == rollout.ResultPaused]},
		"annotations": map[string]string{
			"summary":     fmt.Sprintf("Rollout of %s version %s %s (%g%% -> %g%%)", e.Model, e.Candidate, e.Result, e.From, e.To),
			"description": e.Reason,
		},
		"startsAt": e.At,
	}
	if e.Result == rollout.ResultAdvanced || e.Result == rollout.ResultCompleted {
		alert["endsAt"] = e.At // informational: resolved as it is sent
	}
	body, _ := json.Marshal([]any{alert})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		n.log.Warn("rollout webhook failed", "model", e.Model, "error", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		n.log.Warn("rollout webhook failed", "model", e.Model, "error", err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 {
		n.log.Warn("rollout webhook refused the event", "model", e.Model, "status", resp.Status)
	}
}

// newRollouts creates the rollout controller and what feeds it.
func (s *Server) newRollouts() error {
	s.evidence = newEvidence(s.monitor, s.compare)
	s.notifier = newRolloutNotifier(s.log, s.Config)
	c, err := rollout.New(rollout.Options{Evidence: s.evidence, Writer: weightsWriter{s}, Now: s.now,
		Logger: s.log.With("component", "rollout"), Registerer: s.opts.Registerer, OnEvent: s.notifier.notify})
	if err != nil {
		return err
	}
	s.rollouts = c
	return nil
}

// runRollouts runs the controller and the webhook until ctx is done; the
// returned channel closes when both have stopped.
func (s *Server) runRollouts(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.notifier.run(ctx)
	}()
	if tick := s.opts.RolloutTick; tick >= 0 {
		if tick == 0 {
			tick = time.Second
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.rollouts.Run(ctx, tick)
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}
