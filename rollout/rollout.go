// Package rollout moves a model's traffic to a candidate version step by
// step, holding each step for an interval and a least number of requests,
// and judging gates (error rate, p99 latency, drift, shadow agreement,
// accuracy) of the candidate against a baseline version over the step. A
// failed gate rolls the candidate back to weight 0, or pauses, at once.
//
// The Controller is pure decision: it reads figures through Evidence and
// changes weights through Writer (in vane, the same code as `vane
// weights`, which writes the config file), both defined here and
// implemented by the caller; it reads time from an injected clock and
// does no I/O of its own. The file is the state: on a restart the
// current step is derived from the candidate's weight in it, and a
// rollout that failed or paused stays so because the weights journal's
// last entry for the model says so.
package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaneproxy/vane/configs"
)

// Who is the journal's "who" for the changes a rollout makes.
const Who = "rollout"

// Journal notes that mark a rollout's end; a restart reads them back.
const (
	noteFailed = "rollout failed"
	notePaused = "rollout paused"
)

// Traffic is one version's answers over the current step.
type Traffic struct {
	Requests int64
	// Errors are 5xx answers.
	Errors int64
	// P99 is the 99th percentile of the answers' durations.
	P99 time.Duration
}

// Evidence gives per-version figures over the current step. Each figure
// comes with ok: false when there is no data for it; a gate never passes
// on a figure without data.
type Evidence interface {
	// StartStep begins a new step of model: Traffic counts from now.
	StartStep(model string)
	// Traffic is version's answers since its model's step started; ok is
	// false when it answered none.
	Traffic(model, version string) (t Traffic, ok bool)
	// Drift reports whether version has a drift alert on any feature; ok
	// is false while the monitor has no verdict for it (no reference or
	// no closed window yet, or the model is not monitored).
	Drift(model, version string) (drifted, ok bool)
	// ShadowAgreement is the share 0..1 of version's answers that agree
	// with its baseline's.
	ShadowAgreement(model, version string) (ratio float64, ok bool)
	// Accuracy is version's labelled class-like answers and how many of
	// them were right; ok is false while it has none.
	Accuracy(model, version string) (correct, labelled int64, ok bool)
}

// Writer reads and changes a model's weights.
type Writer interface {
	// Weights are the model's version weights as served, in config order.
	Weights(model string) ([]configs.VersionWeight, error)
	// SetWeights gives the named versions these weights, recording note
	// in the journal; the change is applied before it returns.
	SetWeights(model string, weights map[string]float64, note string) error
	// Note records note in the journal without changing weights.
	Note(model, note string) error
	// LastEntry is the model's newest journal entry.
	LastEntry(model string) (e configs.Entry, ok bool, err error)
}

// The states of a rollout.
const (
	StateProgressing = "progressing"
	StateComplete    = "complete"
	StateRolledBack  = "rolled_back"
	StatePaused      = "paused"
	StateError       = "error"
)

// The results of a transition, as vane_rollout_transitions_total counts
// them.
const (
	ResultAdvanced   = "advanced"
	ResultCompleted  = "completed"
	ResultRolledBack = "rolled_back"
	ResultPaused     = "paused"
)

// Event is one transition of a rollout.
type Event struct {
	Model     string    `json:"model"`
	Candidate string    `json:"candidate"`
	Baseline  string    `json:"baseline"`
	Result    string    `json:"result"`
	From      float64   `json:"from_percent"`
	To        float64   `json:"to_percent"`
	Reason    string    `json:"reason"`
	Gates     []Gate    `json:"gates"`
	At        time.Time `json:"at"`
}

// Options are a Controller's dependencies.
type Options struct {
	Evidence Evidence
	Writer   Writer
	// Now defaults to time.Now.
	Now func() time.Time
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives vane_rollout_step and
	// vane_rollout_transitions_total; nil registers nowhere.
	Registerer prometheus.Registerer
	// OnEvent, when set, is called with every transition, after it was
	// written; it must not block (the alert webhook queues).
	OnEvent func(Event)
}

// Controller runs the rollouts of the configured models. Configure it
// with each applied config; call Evaluate (or Run) to act.
type Controller struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	step    *prometheus.GaugeVec
	trans   *prometheus.CounterVec
	desired atomic.Pointer[[]desired] // set by Configure

	// mu serializes Evaluate and guards states.
	mu     sync.Mutex
	states map[string]*state
	// statusMu guards status, the last evaluation's result, so Status
	// never waits for an Evaluate that is writing a file.
	statusMu sync.Mutex
	status   []Status
}

// desired is one model's configured rollout.
type desired struct {
	model    string
	versions []string
	r        configs.Rollout
}

// state is one rollout's progress, owned by Evaluate.
type state struct {
	cfg      configs.Rollout
	baseline string
	state    string
	step     int     // index into cfg.Steps; -1 before the first
	percent  float64 // the candidate's current percent of the pair
	total    float64 // the pair's weight
	started  time.Time
	seen     []configs.VersionWeight // weights after this controller's last look
	decision string
	gates    []Gate
}

// New returns a Controller with its metrics registered.
func New(opts Options) (*Controller, error) {
	c := &Controller{opts: opts, log: opts.Logger, now: opts.Now, states: map[string]*state{}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.step = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "vane_rollout_step",
		Help: "Percent of the candidate/baseline pair's weight that the model's rollout gives the candidate now (0 after a rollback, 100 when complete).",
	}, []string{"model"})
	c.trans = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vane_rollout_transitions_total",
		Help: "Rollout transitions by model and result (advanced, completed, rolled_back, paused).",
	}, []string{"model", "result"})
	if opts.Registerer != nil {
		for _, col := range []prometheus.Collector{c.step, c.trans} {
			if err := opts.Registerer.Register(col); err != nil {
				return nil, fmt.Errorf("registering rollout metrics: %w", err)
			}
		}
	}
	empty := []desired{}
	c.desired.Store(&empty)
	return c, nil
}

// Configure takes the rollouts of an applied config. It never blocks on
// Evaluate (which may be the caller, through Writer): the next Evaluate
// acts on it.
func (c *Controller) Configure(cfg *configs.Config) {
	var ds []desired
	for _, m := range cfg.Models {
		if !m.Rollout.Enabled() {
			continue
		}
		d := desired{model: m.Name, r: m.Rollout}
		d.r.Steps = slices.Clone(m.Rollout.Steps)
		for _, v := range m.Versions {
			d.versions = append(d.versions, v.Name)
		}
		ds = append(ds, d)
	}
	c.desired.Store(&ds)
}

// Run evaluates every tick until ctx is done.
func (c *Controller) Run(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.safeEvaluate()
		}
	}
}

func (c *Controller) safeEvaluate() {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("rollout evaluation panicked", "panic", r)
		}
	}()
	c.Evaluate()
}

// Evaluate looks at every configured rollout once and acts: starts it,
// holds, steps on, completes, rolls back or pauses.
func (c *Controller) Evaluate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	ds := *c.desired.Load()
	live := map[string]bool{}
	var out []Status
	for _, d := range ds {
		live[d.model] = true
		st := c.evaluate(d)
		out = append(out, c.statusOf(d, st))
		c.step.WithLabelValues(d.model).Set(st.percent)
	}
	for model := range c.states {
		if !live[model] {
			delete(c.states, model)
			c.step.DeleteLabelValues(model)
		}
	}
	c.statusMu.Lock()
	c.status = out
	c.statusMu.Unlock()
}

func (c *Controller) evaluate(d desired) *state {
	ws, err := c.opts.Writer.Weights(d.model)
	if err != nil {
		return c.fail(d, fmt.Sprintf("reading weights: %v", err))
	}
	st := c.states[d.model]
	if st != nil && reflect.DeepEqual(st.cfg, d.r) && !slices.Equal(st.seen, ws) &&
		(st.state == StateProgressing || st.state == StateComplete) && weightOf(ws, d.r.Candidate) == 0 {
		// Someone took the candidate's traffic away while it rolled out:
		// that is a stop, not a reason to start over.
		c.stop(d, st, ws)
		return st
	}
	if st == nil || !reflect.DeepEqual(st.cfg, d.r) || !slices.Equal(st.seen, ws) {
		// New, reconfigured, or its weights were changed by someone else:
		// (re)derive where it stands from the file and the journal.
		st = c.start(d, ws)
		c.states[d.model] = st
	}
	switch {
	case st.state == StateProgressing && st.step < 0:
		c.advance(d, st, "rollout starts") // its first write failed: again
	case st.state == StateProgressing:
		c.judge(d, st)
	}
	if ws, err := c.opts.Writer.Weights(d.model); err == nil {
		st.seen = ws
	}
	return st
}

// fail records a state the controller cannot act from (it retries on the
// next Evaluate).
func (c *Controller) fail(d desired, why string) *state {
	st := &state{cfg: d.r, state: StateError, step: -1, decision: why}
	old := c.states[d.model]
	if old != nil {
		st.percent = old.percent
	}
	if old == nil || old.decision != why { // once, not every evaluation
		c.log.Error("rollout cannot proceed", "model", d.model, "reason", why)
	}
	c.states[d.model] = st
	return st
}

// start derives a rollout's state from the weights and the journal, and
// writes its first step when it has not begun.
func (c *Controller) start(d desired, ws []configs.VersionWeight) *state {
	r := d.r
	st := &state{cfg: r, step: -1, baseline: r.Baseline, started: c.now()}
	if st.baseline == "" {
		st.baseline = highestOther(ws, r.Candidate)
	}
	wc, wb := weightOf(ws, r.Candidate), weightOf(ws, st.baseline)
	st.total = wc + wb
	if st.total <= 0 {
		st.state, st.decision = StateError, fmt.Sprintf("candidate %s and baseline %s both weigh 0: nothing to move", r.Candidate, st.baseline)
		return st
	}
	st.percent = 100 * wc / st.total
	if e, ok, err := c.opts.Writer.LastEntry(d.model); err != nil {
		st.state, st.decision = StateError, fmt.Sprintf("reading the weights journal: %v", err)
		return st
	} else if ok && e.Who == Who && slices.Equal(e.After, ws) {
		switch {
		case strings.HasPrefix(e.Note, noteFailed):
			st.state, st.decision = StateRolledBack, e.Note+" (set the weights to start again)"
			return st
		case strings.HasPrefix(e.Note, notePaused):
			st.state, st.decision = StatePaused, e.Note+" (set the weights to resume)"
			return st
		}
	}
	if st.percent >= 100 {
		st.state, st.step, st.decision = StateComplete, len(r.Steps)-1, "the candidate has all of the pair's traffic"
		return st
	}
	for i, s := range r.Steps {
		if s <= st.percent+1e-9 {
			st.step = i
		}
	}
	st.state = StateProgressing
	if st.step < 0 {
		c.advance(d, st, "rollout starts")
		return st
	}
	st.decision = fmt.Sprintf("resumed at step %d (%s%%)", st.step+1, pct(st.percent))
	c.opts.Evidence.StartStep(d.model)
	c.log.Info("rollout resumed", "model", d.model, "candidate", r.Candidate, "baseline", st.baseline, "percent", st.percent)
	return st
}

// judge checks the gates of the current step and acts on them.
func (c *Controller) judge(d desired, st *state) {
	gates, verdict := c.gates(d, st)
	st.gates = gates
	elapsed := c.now().Sub(st.started)
	switch {
	case verdict.failed != nil:
		c.onFail(d, st, fmt.Sprintf("gate %s failed: %s", verdict.failed.Name, verdict.failed.Detail))
	case verdict.waiting != nil:
		st.decision = "holding: " + verdict.waiting.Detail
	case elapsed < st.cfg.Interval:
		st.decision = fmt.Sprintf("holding: gates pass; the step is held for %s (%s so far)", st.cfg.Interval, elapsed.Truncate(time.Second))
	case verdict.noData != nil:
		st.decision = fmt.Sprintf("holding: gate %s has no data (%s); a gate without data never passes", verdict.noData.Name, verdict.noData.Detail)
	default:
		c.advance(d, st, "gates passed: "+summary(gates))
	}
}

// advance writes the next step.
func (c *Controller) advance(d desired, st *state, why string) {
	next := st.step + 1
	to := st.cfg.Steps[next]
	wc := st.total * to / 100
	w := map[string]float64{d.r.Candidate: wc, st.baseline: st.total - wc}
	note := fmt.Sprintf("rollout step %d/%d: %s%%; %s", next+1, len(st.cfg.Steps), pct(to), why)
	if err := c.opts.Writer.SetWeights(d.model, w, note); err != nil {
		decision := fmt.Sprintf("holding: writing step %s%% failed: %v", pct(to), err)
		if decision != st.decision { // once, not every evaluation
			c.log.Error("rollout could not write its next step", "model", d.model, "percent", to, "error", err)
		}
		st.decision = decision
		return
	}
	from := st.percent
	st.step, st.percent, st.started = next, to, c.now()
	c.opts.Evidence.StartStep(d.model)
	result := ResultAdvanced
	if to >= 100 {
		st.state, result = StateComplete, ResultCompleted
		st.decision = "complete: " + why
	} else {
		st.decision = fmt.Sprintf("stepped to %s%%: %s", pct(to), why)
	}
	c.emit(d, st, result, from, why)
}

// stop pauses a rollout whose candidate was set to weight 0 by someone
// else, and records it so that a restart does not start it again.
func (c *Controller) stop(d desired, st *state, ws []configs.VersionWeight) {
	why := "the candidate's weight was set to 0 by hand"
	if e, ok, err := c.opts.Writer.LastEntry(d.model); err == nil && ok && e.Who != Who {
		why = "the candidate's weight was set to 0 by " + e.Who
	}
	from := st.percent
	note := fmt.Sprintf("%s at %s%%: %s", notePaused, pct(from), why)
	if err := c.opts.Writer.Note(d.model, note); err != nil {
		c.log.Error("rollout could not record its stop", "model", d.model, "error", err)
	}
	st.state, st.percent, st.decision, st.seen = StatePaused, 0, note+" (set the weights to resume)", ws
	c.emit(d, st, ResultPaused, from, why)
}

// onFail rolls back or pauses.
func (c *Controller) onFail(d desired, st *state, why string) {
	from := st.percent
	if st.cfg.OnFail == configs.OnFailPause {
		note := fmt.Sprintf("%s at %s%%: %s", notePaused, pct(from), why)
		if err := c.opts.Writer.Note(d.model, note); err != nil {
			c.log.Error("rollout could not record its pause", "model", d.model, "error", err)
		}
		st.state, st.decision = StatePaused, note
		c.emit(d, st, ResultPaused, from, why)
		return
	}
	note := fmt.Sprintf("%s at %s%%: %s", noteFailed, pct(from), why)
	w := map[string]float64{d.r.Candidate: 0, st.baseline: st.total}
	if err := c.opts.Writer.SetWeights(d.model, w, note); err != nil {
		decision := fmt.Sprintf("rolling back failed, retrying: %v (%s)", err, why)
		if decision != st.decision {
			c.log.Error("rollout could not roll back", "model", d.model, "error", err)
		}
		st.decision = decision
		return
	}
	st.state, st.percent, st.decision = StateRolledBack, 0, note
	c.emit(d, st, ResultRolledBack, from, why)
}

func (c *Controller) emit(d desired, st *state, result string, from float64, why string) {
	c.trans.WithLabelValues(d.model, result).Inc()
	lvl := slog.LevelInfo
	if result == ResultRolledBack || result == ResultPaused {
		lvl = slog.LevelWarn
	}
	c.log.Log(context.Background(), lvl, "rollout "+result, "model", d.model, "candidate", d.r.Candidate,
		"baseline", st.baseline, "from_percent", from, "to_percent", st.percent, "reason", why)
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(Event{Model: d.model, Candidate: d.r.Candidate, Baseline: st.baseline, Result: result,
			From: from, To: st.percent, Reason: why, Gates: slices.Clone(st.gates), At: c.now().UTC()})
	}
}

// highestOther is the version other than candidate with the highest
// weight, the first in config order on a tie.
func highestOther(ws []configs.VersionWeight, candidate string) string {
	best, bw := "", math.Inf(-1)
	for _, v := range ws {
		if v.Version != candidate && v.Weight > bw {
			best, bw = v.Version, v.Weight
		}
	}
	return best
}

func weightOf(ws []configs.VersionWeight, name string) float64 {
	for _, v := range ws {
		if v.Version == name {
			return v.Weight
		}
	}
	return 0
}

func pct(f float64) string { return fmt.Sprintf("%g", f) }
