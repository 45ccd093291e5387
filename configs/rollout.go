package configs

import (
	"math"
	"time"
)

// Rollout moves traffic to a candidate version step by step, checking
// gates against a baseline version at each step. It is on when Candidate
// is set; a "rollout:" key without a candidate is an error.
//
// At each step the candidate gets Steps[i] percent of the pair's weight
// (candidate weight = step, baseline weight = pair total - step; with the
// usual total of 100, the weights are the percentages). The step is held
// for Interval and at least Gates.MinRequests candidate requests; then,
// if every gate passes, the next step is written to the file. A failed
// gate acts at once (OnFail).
type Rollout struct {
	// Candidate is the version being rolled out; required.
	Candidate string `yaml:"candidate"`
	// Baseline is the version compared with and traffic taken from.
	// Default: the other version with the highest weight (first in config
	// order on a tie), read when the rollout starts.
	Baseline string `yaml:"baseline"`
	// Steps are the candidate's traffic percentages, increasing, each in
	// (0, 100], the last 100. Default [1, 5, 25, 50, 100].
	Steps []float64 `yaml:"steps"`
	// Interval is how long each step is held at least. Default 5m.
	Interval time.Duration `yaml:"interval"`
	// Gates decide whether a step passes.
	Gates Gates `yaml:"gates"`
	// OnFail is what a failed gate does: rollback (default: candidate to
	// weight 0, the baseline back to the pair's total) or pause (weights
	// stay; the rollout waits for an operator).
	OnFail string `yaml:"on_fail"`
}

// Gates are a rollout step's pass conditions. A gate with no data never
// passes: the step holds until it has data.
type Gates struct {
	// MinRequests the candidate must answer in a step before any gate is
	// judged, >= 1. Default 100.
	MinRequests int `yaml:"min_requests"`
	// MaxErrorRatio bounds candidate error rate / baseline error rate,
	// > 0. Errors are 5xx answers. Default 2.
	MaxErrorRatio float64 `yaml:"max_error_ratio"`
	// ErrorRateFloor is the least baseline error rate the ratio divides
	// by, so a baseline without errors (0/0) still gives a ratio: with
	// the default 0.01, a candidate failing 1 % against a clean baseline
	// has ratio 1. In (0, 1].
	ErrorRateFloor float64 `yaml:"error_rate_floor"`
	// MaxP99Ratio bounds candidate p99 latency / baseline p99 latency,
	// each taken as at least P99Floor, > 0. Default 1.5.
	MaxP99Ratio float64 `yaml:"max_p99_ratio"`
	// P99Floor is the least p99 the latency ratio uses for either
	// version, so that jitter between fast answers (a 2ms and a 5ms p99)
	// does not fail a step, >= 0. Default 10ms.
	P99Floor time.Duration `yaml:"p99_floor"`
	// NoDrift, when true, fails the step while the drift monitor has an
	// alert on any feature of the candidate. Default true.
	NoDrift bool `yaml:"no_drift"`
	// MinShadowAgreement, when > 0, needs the candidate's shadow
	// agreement with the baseline at or above it, in (0, 1]. Default 0
	// (off).
	MinShadowAgreement float64 `yaml:"min_shadow_agreement"`
	// AccuracyNotWorse, when true, needs the candidate's accuracy on
	// labelled feedback at least the baseline's. Default false.
	AccuracyNotWorse bool `yaml:"accuracy_not_worse"`
}

// The rollout on_fail actions.
const (
	OnFailRollback = "rollback"
	OnFailPause    = "pause"
)

// Rollout defaults.
const (
	DefaultRolloutInterval = 5 * time.Minute
	DefaultGateMinRequests = 100
	DefaultMaxErrorRatio   = 2.0
	DefaultErrorRateFloor  = 0.01
	DefaultMaxP99Ratio     = 1.5
	DefaultP99Floor        = 10 * time.Millisecond
	DefaultNoDrift         = true
	DefaultOnFail          = OnFailRollback
)

// DefaultRolloutSteps is rollout.steps when absent: [1, 5, 25, 50, 100].
// Each call returns a new slice.
func DefaultRolloutSteps() []float64 { return []float64{1, 5, 25, 50, 100} }

// Enabled reports whether the model has a rollout.
func (r *Rollout) Enabled() bool { return r.Candidate != "" }

// rolloutDefaults fills a present rollout's absent keys.
func rolloutDefaults(m *Model, idx nodeIndex, path string) {
	if !idx.has(path) {
		return
	}
	at := func(key string) string { return path + "." + key }
	r := &m.Rollout
	setDefault(&r.Steps, idx, at("steps"), DefaultRolloutSteps())
	setDefault(&r.Interval, idx, at("interval"), DefaultRolloutInterval)
	setDefault(&r.OnFail, idx, at("on_fail"), DefaultOnFail)
	g := &r.Gates
	setDefault(&g.MinRequests, idx, at("gates.min_requests"), DefaultGateMinRequests)
	setDefault(&g.MaxErrorRatio, idx, at("gates.max_error_ratio"), DefaultMaxErrorRatio)
	setDefault(&g.ErrorRateFloor, idx, at("gates.error_rate_floor"), DefaultErrorRateFloor)
	setDefault(&g.MaxP99Ratio, idx, at("gates.max_p99_ratio"), DefaultMaxP99Ratio)
	setDefault(&g.P99Floor, idx, at("gates.p99_floor"), DefaultP99Floor)
	setDefault(&g.NoDrift, idx, at("gates.no_drift"), DefaultNoDrift)
}

// rollout checks a model's rollout, when it has one.
func (v *validator) rollout(m *Model, p string) {
	r := &m.Rollout
	if !r.Enabled() {
		if v.idx.has(p) {
			v.add(p+".candidate", "is required: name the version to roll out (%s)", m.versionList())
		}
		return
	}
	if !m.hasVersion(r.Candidate) {
		v.add(p+".candidate", "must name a version of this model (%s); got %q", m.versionList(), r.Candidate)
	}
	switch {
	case r.Baseline != "" && !m.hasVersion(r.Baseline):
		v.add(p+".baseline", "must name a version of this model (%s); got %q", m.versionList(), r.Baseline)
	case r.Baseline != "" && r.Baseline == r.Candidate:
		v.add(p+".baseline", "must differ from candidate %q", r.Candidate)
	case r.Baseline == "" && len(m.Versions) < 2:
		v.add(p, "needs a second version to compare the candidate with and take traffic from")
	}
	if len(r.Steps) == 0 {
		v.add(p+".steps", "must list at least one step, the last 100")
	}
	for i, s := range r.Steps {
		q := item(p+".steps", i)
		switch {
		case math.IsNaN(s) || !(s > 0 && s <= 100):
			v.add(q, "must be a percentage > 0 and <= 100, got %s", fmtFloat(s))
		case i > 0 && s <= r.Steps[i-1]:
			v.add(q, "must be greater than the step before (%s), got %s", fmtFloat(r.Steps[i-1]), fmtFloat(s))
		}
	}
	if n := len(r.Steps); n > 0 && r.Steps[n-1] != 100 {
		v.add(item(p+".steps", n-1), "the last step must be 100 (the candidate takes all the pair's traffic), got %s", fmtFloat(r.Steps[n-1]))
	}
	v.positive(p+".interval", r.Interval)
	switch r.OnFail {
	case OnFailRollback, OnFailPause:
	default:
		v.add(p+".on_fail", "must be rollback or pause; got %q", r.OnFail)
	}
	g, q := &r.Gates, p+".gates"
	v.atLeast(q+".min_requests", g.MinRequests, 1)
	if !(g.MaxErrorRatio > 0) || math.IsInf(g.MaxErrorRatio, 0) {
		v.add(q+".max_error_ratio", "must be a finite number > 0, got %s", fmtFloat(g.MaxErrorRatio))
	}
	if !(g.ErrorRateFloor > 0 && g.ErrorRateFloor <= 1) {
		v.add(q+".error_rate_floor", "must be > 0 and <= 1, got %s", fmtFloat(g.ErrorRateFloor))
	}
	if !(g.MaxP99Ratio > 0) || math.IsInf(g.MaxP99Ratio, 0) {
		v.add(q+".max_p99_ratio", "must be a finite number > 0, got %s", fmtFloat(g.MaxP99Ratio))
	}
	v.nonNegative(q+".p99_floor", g.P99Floor, "compares p99s as measured")
	if !(g.MinShadowAgreement >= 0 && g.MinShadowAgreement <= 1) {
		v.add(q+".min_shadow_agreement", "must be >= 0 and <= 1 (0: off), got %s", fmtFloat(g.MinShadowAgreement))
	}
}
