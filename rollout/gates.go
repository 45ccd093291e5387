package rollout

import (
	"fmt"
	"strings"
	"time"

	"github.com/vaneproxy/vane/judge"
)

// The verdicts of a gate.
const (
	// Pass: the gate has data and it is within bounds.
	VerdictPass = "pass"
	// Fail: the gate has data and it is out of bounds.
	VerdictFail = "fail"
	// NoData: nothing to judge yet; the step holds. Never a pass.
	VerdictNoData = "no_data"
	// Waiting: the candidate has not answered min_requests yet; no other
	// gate is judged before.
	VerdictWaiting = "waiting"
)

// Gate is one gate's value at the last evaluation, and its verdict.
type Gate struct {
	Name string `json:"gate"`
	// Value is what was measured (a ratio, a count, 1 for a drift alert);
	// absent without data.
	Value *float64 `json:"value,omitempty"`
	// Threshold is the bound it was held to.
	Threshold float64 `json:"threshold"`
	Verdict   string  `json:"verdict"`
	// Detail says what was compared, in words.
	Detail string `json:"detail"`
}

// minP99 keeps the latency ratio finite when p99_floor is 0.
const minP99 = time.Microsecond

// verdict is what a set of gates decides: the first failed gate, else the
// first waiting one, else the first without data; all nil is a pass.
type verdict struct{ failed, waiting, noData *Gate }

// gates judges every configured gate over the current step.
func (c *Controller) gates(d desired, st *state) ([]Gate, verdict) {
	g := st.cfg.Gates
	ev := c.opts.Evidence
	cand, okC := ev.Traffic(d.model, d.r.Candidate)
	base, okB := ev.Traffic(d.model, st.baseline)
	var out []Gate
	add := func(gt Gate) { out = append(out, gt) }

	n := float64(cand.Requests)
	if !okC {
		n = 0
	}
	mr := Gate{Name: "min_requests", Value: &n, Threshold: float64(g.MinRequests), Verdict: VerdictPass,
		Detail: fmt.Sprintf("candidate answered %d of the %d requests a step needs", int64(n), g.MinRequests)}
	if int64(n) < int64(g.MinRequests) {
		mr.Verdict = VerdictWaiting
		add(mr)
		return out, pick(out)
	}
	add(mr)

	// Error rate ratio. Without baseline answers the ratio is taken
	// against the floor: that can fail a candidate, never pass it.
	candRate := float64(cand.Errors) / float64(cand.Requests)
	er := Gate{Name: "max_error_ratio", Threshold: g.MaxErrorRatio}
	if okB && base.Requests > 0 {
		baseRate := float64(base.Errors) / float64(base.Requests)
		ratio := candRate / max(baseRate, g.ErrorRateFloor)
		er.Value = &ratio
		er.Verdict = passIf(ratio <= g.MaxErrorRatio)
		er.Detail = fmt.Sprintf("candidate error rate %.4f (%d/%d) / baseline %.4f (%d/%d, floor %g) = %.3f",
			candRate, cand.Errors, cand.Requests, baseRate, base.Errors, base.Requests, g.ErrorRateFloor, ratio)
	} else {
		ratio := candRate / g.ErrorRateFloor
		er.Verdict = VerdictNoData
		er.Detail = fmt.Sprintf("baseline answered nothing this step; candidate error rate %.4f", candRate)
		if ratio > g.MaxErrorRatio {
			er.Value, er.Verdict = &ratio, VerdictFail
			er.Detail += fmt.Sprintf(" is over %g times the floor %g even so", g.MaxErrorRatio, g.ErrorRateFloor)
		}
	}
	add(er)

	lat := Gate{Name: "max_p99_ratio", Threshold: g.MaxP99Ratio, Verdict: VerdictNoData,
		Detail: "baseline answered nothing this step"}
	if okB && base.Requests > 0 {
		floor := max(g.P99Floor, minP99)
		ratio := float64(max(cand.P99, floor)) / float64(max(base.P99, floor))
		lat.Value, lat.Verdict = &ratio, passIf(ratio <= g.MaxP99Ratio)
		lat.Detail = fmt.Sprintf("candidate p99 %s / baseline p99 %s (each at least %s) = %.3f", cand.P99, base.P99, floor, ratio)
	}
	add(lat)

	if g.NoDrift {
		dg := Gate{Name: "no_drift", Threshold: 0, Verdict: VerdictNoData,
			Detail: "the drift monitor has no verdict on the candidate yet (no reference or no closed window)"}
		if drifted, ok := ev.Drift(d.model, d.r.Candidate); ok {
			v := 0.0
			dg.Detail = "no drift alert on the candidate"
			if drifted {
				v = 1
				dg.Detail = "the candidate has a drift alert"
			}
			dg.Value, dg.Verdict = &v, passIf(!drifted)
		}
		add(dg)
	}
	if g.MinShadowAgreement > 0 {
		sg := Gate{Name: "min_shadow_agreement", Threshold: g.MinShadowAgreement, Verdict: VerdictNoData,
			Detail: "no shadow comparison of the candidate with the baseline"}
		if a, ok := ev.ShadowAgreement(d.model, d.r.Candidate); ok {
			sg.Value, sg.Verdict = &a, passIf(a >= g.MinShadowAgreement)
			sg.Detail = fmt.Sprintf("shadow agreement %.4f", a)
		}
		add(sg)
	}
	if g.AccuracyNotWorse {
		ag := Gate{Name: "accuracy_not_worse", Verdict: VerdictNoData, Detail: "no labelled feedback for both versions"}
		cc, cn, okC := ev.Accuracy(d.model, d.r.Candidate)
		bc, bn, okB := ev.Accuracy(d.model, st.baseline)
		if okC && okB {
			// The same always-valid test as GET /compare: evaluating the
			// gate at every tick does not make an equal candidate look
			// worse by chance, and too few labels hold the step.
			t := judge.TestProportions("accuracy", bc, bn, cc, cn, judge.TauAccuracy, false)
			diff := t.Effect
			ag.Value = &diff
			ag.Detail = fmt.Sprintf("candidate accuracy %.4f (%d labelled) - baseline %.4f (%d) = %+.4f: %s (p=%.3g)",
				t.Candidate, cn, t.Baseline, bn, diff, t.Verdict, t.PValue)
			switch t.Verdict {
			case judge.Worse:
				ag.Verdict = VerdictFail
			case judge.Better, judge.NoDifference:
				ag.Verdict = VerdictPass
			}
		}
		add(ag)
	}
	return out, pick(out)
}

func passIf(ok bool) string {
	if ok {
		return VerdictPass
	}
	return VerdictFail
}

func pick(gs []Gate) verdict {
	var v verdict
	for i := range gs {
		g := &gs[i]
		switch g.Verdict {
		case VerdictFail:
			if v.failed == nil {
				v.failed = g
			}
		case VerdictWaiting:
			if v.waiting == nil {
				v.waiting = g
			}
		case VerdictNoData:
			if v.noData == nil {
				v.noData = g
			}
		}
	}
	return v
}

// summary renders gates as "max_error_ratio=0.000 max_p99_ratio=0.950".
func summary(gs []Gate) string {
	var parts []string
	for _, g := range gs {
		if g.Value != nil {
			parts = append(parts, fmt.Sprintf("%s=%.3g", g.Name, *g.Value))
		}
	}
	return strings.Join(parts, " ")
}

// Status is one rollout as GET /status shows it.
type Status struct {
	Model     string    `json:"model"`
	Candidate string    `json:"candidate"`
	Baseline  string    `json:"baseline"`
	State     string    `json:"state"`
	Steps     []float64 `json:"steps"`
	// Step is the 1-based index of the current step in Steps; 0 before
	// the first.
	Step int `json:"step"`
	// Percent is the candidate's share of the pair's weight now.
	Percent       float64   `json:"percent"`
	StepStartedAt time.Time `json:"step_started_at"`
	// Decision is what the last evaluation decided, and why.
	Decision string `json:"decision"`
	// Gates are the values that decided it.
	Gates []Gate `json:"gates"`
}

// Status lists the rollouts as the last Evaluate left them.
func (c *Controller) Status() []Status {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	return append([]Status(nil), c.status...)
}

func (c *Controller) statusOf(d desired, st *state) Status {
	gates := st.gates
	if gates == nil {
		gates = []Gate{}
	}
	return Status{Model: d.model, Candidate: d.r.Candidate, Baseline: st.baseline, State: st.state,
		Steps: st.cfg.Steps, Step: st.step + 1, Percent: st.percent, StepStartedAt: st.started.UTC(),
		Decision: st.decision, Gates: gates}
}
