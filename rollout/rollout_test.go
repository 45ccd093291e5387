package rollout

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// fileWriter is the Writer vane uses, minus the reload: it edits a real
// config file through configs.WeightEditor.
type fileWriter struct{ ed *configs.WeightEditor }

func (w fileWriter) Weights(model string) ([]configs.VersionWeight, error) {
	cfg, _, err := configs.Load(w.ed.Path)
	if err != nil {
		return nil, err
	}
	for _, m := range configs.WeightsOf(cfg) {
		if m.Model == model {
			return m.Versions, nil
		}
	}
	return nil, os.ErrNotExist
}

func (w fileWriter) SetWeights(model string, ws map[string]float64, note string) error {
	_, err := w.ed.Set(model, ws, Who, note)
	return err
}

func (w fileWriter) Note(model, note string) error { return w.ed.Note(model, Who, note) }

func (w fileWriter) LastEntry(model string) (configs.Entry, bool, error) {
	return w.ed.LastEntry(model)
}

// fakeEvidence serves figures set by the test, per version.
type fakeEvidence struct {
	mu      sync.Mutex // guards the maps
	traffic map[string]Traffic
	drift   map[string]bool
	starts  int
	// agree and acc, when set, are shadow agreement and accuracy counts
	// ([correct, labelled]) per version.
	agree map[string]float64
	acc   map[string][2]int64
}

func (f *fakeEvidence) StartStep(string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts++
	f.traffic = map[string]Traffic{}
}

func (f *fakeEvidence) Traffic(_, v string) (Traffic, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.traffic[v]
	return t, ok && t.Requests > 0
}

func (f *fakeEvidence) Drift(_, v string) (bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.drift[v]
	return d, ok
}

func (f *fakeEvidence) ShadowAgreement(_, v string) (float64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.agree[v]
	return a, ok
}

func (f *fakeEvidence) Accuracy(_, v string) (int64, int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.acc[v]
	return a[0], a[1], ok
}

func (f *fakeEvidence) set(v string, t Traffic) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.traffic[v] = t
}

func (f *fakeEvidence) setDrift(v string, d bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drift[v] = d
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time                  { return c.t }
func (c *clock) advance(d time.Duration)         { c.t = c.t.Add(d) }
func healthy(n int64, p99 time.Duration) Traffic { return Traffic{Requests: n, P99: p99} }

const rolloutConfig = `state_dir: STATE
models:
  - name: iris
    match: {path_prefix: /}
    versions:
      - name: v1   # stable
        weight: 100
        endpoints: ["http://127.0.0.1:1"]
      - name: v2   # candidate
        weight: 0
        endpoints: ["http://127.0.0.1:2"]
    rollout:
      candidate: v2
      interval: 1m
      on_fail: ONFAIL
      gates: {min_requests: 50, no_drift: NODRIFT}
`

type harness struct {
	t    *testing.T
	path string
	ed   *configs.WeightEditor
	ev   *fakeEvidence
	clk  *clock
	c    *Controller
	evs  []Event
}

func newHarness(t *testing.T, onFail string, noDrift bool) *harness {
	t.Helper()
	dir := t.TempDir()
	text := strings.NewReplacer("STATE", filepath.Join(dir, "state"), "ONFAIL", onFail,
		"NODRIFT", map[bool]string{true: "true", false: "false"}[noDrift]).Replace(rolloutConfig)
	path := filepath.Join(dir, "vane.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	h := &harness{t: t, path: path, ed: &configs.WeightEditor{Path: path},
		ev:  &fakeEvidence{traffic: map[string]Traffic{}, drift: map[string]bool{}},
		clk: &clock{t: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)}}
	h.c = h.newController()
	return h
}

func (h *harness) newController() *Controller {
	// A fresh registry each time: a restart is a new process.
	c, err := New(Options{Evidence: h.ev, Writer: fileWriter{h.ed}, Now: h.clk.now, Registerer: prometheus.NewRegistry(),
		OnEvent: func(e Event) { h.evs = append(h.evs, e) }})
	require.NoError(h.t, err)
	cfg, _, err := configs.Load(h.path)
	require.NoError(h.t, err)
	c.Configure(cfg)
	return c
}

func (h *harness) weights() string {
	cfg, _, err := configs.Load(h.path)
	require.NoError(h.t, err)
	return configs.FormatWeights(configs.WeightsOf(cfg)[0].Versions)
}

func (h *harness) status() Status {
	st := h.c.Status()
	require.Len(h.t, st, 1)
	return st[0]
}

// step runs one full healthy step: traffic on both, interval passed.
func (h *harness) healthyStep() {
	h.ev.set("v1", healthy(1000, 20*time.Millisecond))
	h.ev.set("v2", healthy(60, 22*time.Millisecond))
	h.ev.setDrift("v2", false)
	h.clk.advance(time.Minute)
	h.c.Evaluate()
}

func TestHealthyCandidateReachesAllTrafficThroughEveryStep(t *testing.T) {
	h := newHarness(t, "rollback", true)
	h.c.Evaluate()
	assert.Equal(t, "v1=99 v2=1", h.weights(), "the first evaluation writes step 1")
	assert.Equal(t, StateProgressing, h.status().State)

	var seen []string
	for _, want := range []string{"v1=95 v2=5", "v1=75 v2=25", "v1=50 v2=50", "v1=0 v2=100"} {
		// Before the interval has passed, the step holds even with
		// passing gates.
		h.ev.set("v1", healthy(1000, 20*time.Millisecond))
		h.ev.set("v2", healthy(60, 22*time.Millisecond))
		h.ev.setDrift("v2", false)
		h.clk.advance(30 * time.Second)
		h.c.Evaluate()
		require.Contains(t, h.status().Decision, "holding")
		h.clk.advance(30 * time.Second)
		h.c.Evaluate()
		seen = append(seen, h.weights())
		require.Equal(t, want, h.weights(), h.status().Decision)
	}
	st := h.status()
	assert.Equal(t, StateComplete, st.State)
	assert.Equal(t, 5, st.Step)
	assert.Equal(t, 100.0, testutil.ToFloat64(h.c.step.WithLabelValues("iris")))
	assert.Equal(t, 4.0, testutil.ToFloat64(h.c.trans.WithLabelValues("iris", ResultAdvanced)), "1→5→25→50 and the start")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.c.trans.WithLabelValues("iris", ResultCompleted)))
	hist, err := h.ed.History("iris")
	require.NoError(t, err)
	require.Len(t, hist, 5, "every step is journaled")
	for _, e := range hist {
		assert.Equal(t, Who, e.Who)
		assert.Contains(t, e.Note, "rollout step")
	}
	// Complete stays complete.
	h.clk.advance(time.Hour)
	h.c.Evaluate()
	assert.Equal(t, "v1=0 v2=100", h.weights())
}

func TestFailingCandidateIsRolledBackAtOnceWithItsGateValues(t *testing.T) {
	h := newHarness(t, "rollback", false)
	h.c.Evaluate()
	h.healthyStep()
	require.Equal(t, "v1=95 v2=5", h.weights())

	// Step 2: the candidate fails 20 % of its requests. As soon as it has
	// min_requests answers, well within the interval, it is rolled back.
	h.ev.set("v1", healthy(1000, 20*time.Millisecond))
	h.ev.set("v2", Traffic{Requests: 50, Errors: 10, P99: 20 * time.Millisecond})
	h.clk.advance(10 * time.Second)
	h.c.Evaluate()
	assert.Equal(t, "v1=100 v2=0", h.weights())
	st := h.status()
	assert.Equal(t, StateRolledBack, st.State)
	assert.Equal(t, 0.0, st.Percent)
	var er *Gate
	for i := range st.Gates {
		if st.Gates[i].Name == "max_error_ratio" {
			er = &st.Gates[i]
		}
	}
	require.NotNil(t, er, "the deciding gate is in the status")
	assert.Equal(t, VerdictFail, er.Verdict)
	require.NotNil(t, er.Value)
	assert.InDelta(t, 20.0, *er.Value, 1e-9, "0.2 / max(0, floor 0.01)")
	assert.Contains(t, st.Decision, "gate max_error_ratio failed")
	require.NotEmpty(t, h.evs)
	last := h.evs[len(h.evs)-1]
	assert.Equal(t, ResultRolledBack, last.Result)
	assert.Equal(t, 5.0, last.From)
	assert.Equal(t, 1.0, testutil.ToFloat64(h.c.trans.WithLabelValues("iris", ResultRolledBack)))
	assert.Equal(t, 0.0, testutil.ToFloat64(h.c.step.WithLabelValues("iris")))

	// It stays rolled back, also across a restart (a new controller on
	// the same file and journal).
	h.healthyStep()
	assert.Equal(t, "v1=100 v2=0", h.weights())
	h.c = h.newController()
	h.c.Evaluate()
	assert.Equal(t, StateRolledBack, h.status().State)
	assert.Equal(t, "v1=100 v2=0", h.weights())

	// An operator setting the weights starts it again from there.
	_, err := h.ed.Set("iris", map[string]float64{"v1": 95, "v2": 5}, "operator", "")
	require.NoError(t, err)
	h.c.Evaluate()
	assert.Equal(t, StateProgressing, h.status().State)
	assert.Equal(t, 2, h.status().Step)
}

func TestDriftingCandidateIsStoppedByTheDriftGate(t *testing.T) {
	h := newHarness(t, "pause", true)
	h.c.Evaluate()
	h.healthyStep()
	require.Equal(t, "v1=95 v2=5", h.weights())
	h.ev.set("v1", healthy(1000, 20*time.Millisecond))
	h.ev.set("v2", healthy(60, 20*time.Millisecond))
	h.ev.setDrift("v2", true)
	h.clk.advance(time.Minute)
	h.c.Evaluate()
	st := h.status()
	assert.Equal(t, StatePaused, st.State, st.Decision)
	assert.Contains(t, st.Decision, "gate no_drift failed")
	assert.Equal(t, "v1=95 v2=5", h.weights(), "pause keeps the weights")
	// A restart stays paused: the journal's last entry says so.
	h.c = h.newController()
	h.clk.advance(time.Hour)
	h.healthyStep()
	assert.Equal(t, StatePaused, h.status().State)
	assert.Equal(t, "v1=95 v2=5", h.weights())
}

func TestGateWithoutDataNeverPasses(t *testing.T) {
	h := newHarness(t, "rollback", true)
	h.c.Evaluate()
	require.Equal(t, "v1=99 v2=1", h.weights())
	cases := []struct {
		name  string
		setup func()
		gate  string
	}{
		{"no requests at all", func() {}, "min_requests"},
		{"too few candidate requests", func() {
			h.ev.set("v1", healthy(1000, time.Millisecond))
			h.ev.set("v2", healthy(49, time.Millisecond))
			h.ev.setDrift("v2", false)
		}, "min_requests"},
		{"no baseline traffic", func() {
			h.ev.set("v2", healthy(500, time.Millisecond))
			h.ev.setDrift("v2", false)
		}, "max_error_ratio"},
		{"no drift verdict", func() {
			h.ev.mu.Lock()
			delete(h.ev.drift, "v2")
			h.ev.mu.Unlock()
			h.ev.set("v1", healthy(1000, time.Millisecond))
			h.ev.set("v2", healthy(500, time.Millisecond))
		}, "no_drift"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.ev.StartStep("iris")
			tc.setup()
			for range 5 {
				h.clk.advance(time.Hour) // far past the interval
				h.c.Evaluate()
				require.Equal(t, "v1=99 v2=1", h.weights(), "a gate without data must hold the step")
			}
			st := h.status()
			assert.Equal(t, StateProgressing, st.State)
			assert.Contains(t, st.Decision, "holding")
			found := false
			for _, g := range st.Gates {
				if g.Name == tc.gate {
					found = true
					assert.NotEqual(t, VerdictPass, g.Verdict)
				}
			}
			assert.True(t, found, "gate %s shown: %+v", tc.gate, st.Gates)
		})
	}
	// A failing candidate is still failed without baseline data.
	h.ev.StartStep("iris")
	h.ev.set("v2", Traffic{Requests: 100, Errors: 50})
	h.c.Evaluate()
	assert.Equal(t, StateRolledBack, h.status().State)
}

func TestRestartResumesFromTheFile(t *testing.T) {
	h := newHarness(t, "rollback", false)
	h.c.Evaluate()
	h.healthyStep()
	h.healthyStep()
	require.Equal(t, "v1=75 v2=25", h.weights())
	h.c = h.newController()
	h.c.Evaluate()
	st := h.status()
	assert.Equal(t, 3, st.Step, "resumes at step 3 (25 %%) from the file")
	assert.Equal(t, StateProgressing, st.State)
	assert.Equal(t, "v1=75 v2=25", h.weights())
	h.healthyStep()
	assert.Equal(t, "v1=50 v2=50", h.weights())
}

func TestSlowCandidateFailsTheLatencyGate(t *testing.T) {
	h := newHarness(t, "rollback", false)
	h.c.Evaluate()
	// Fast answers under the floor compare equal, whatever their jitter.
	h.ev.set("v1", healthy(1000, 2*time.Millisecond))
	h.ev.set("v2", healthy(60, 9*time.Millisecond))
	h.clk.advance(time.Minute)
	h.c.Evaluate()
	require.Equal(t, "v1=95 v2=5", h.weights(), h.status().Decision)
	// 40ms against 20ms is a ratio of 2 > 1.5.
	h.ev.set("v1", healthy(1000, 20*time.Millisecond))
	h.ev.set("v2", healthy(60, 40*time.Millisecond))
	h.c.Evaluate()
	st := h.status()
	assert.Equal(t, StateRolledBack, st.State)
	assert.Contains(t, st.Decision, "gate max_p99_ratio failed")
	assert.Equal(t, "v1=100 v2=0", h.weights())
}

func TestJudgeGatesWithoutASourceHold(t *testing.T) {
	h := newHarness(t, "rollback", false)
	data, err := os.ReadFile(h.path)
	require.NoError(t, err)
	text := strings.Replace(string(data), "no_drift: false}", "no_drift: false, min_shadow_agreement: 0.9, accuracy_not_worse: true}", 1)
	require.NoError(t, os.WriteFile(h.path, []byte(text), 0o600))
	h.c = h.newController()
	h.c.Evaluate()
	for range 3 {
		h.healthyStep()
		require.Equal(t, "v1=99 v2=1", h.weights())
	}
	st := h.status()
	assert.Contains(t, st.Decision, "gate min_shadow_agreement has no data")
	verdicts := map[string]string{}
	for _, g := range st.Gates {
		verdicts[g.Name] = g.Verdict
	}
	assert.Equal(t, VerdictNoData, verdicts["min_shadow_agreement"])
	assert.Equal(t, VerdictNoData, verdicts["accuracy_not_worse"])
	assert.Equal(t, VerdictPass, verdicts["max_error_ratio"])
}

// With a source, the judge gates decide: an equal accuracy and a shadow
// agreement above the bar pass; an accuracy worse by more than chance
// (the always-valid test of GET /compare) rolls the candidate back, while
// a small dip within noise does not.
func TestJudgeGatesWithASource(t *testing.T) {
	h := newHarness(t, "rollback", false)
	data, err := os.ReadFile(h.path)
	require.NoError(t, err)
	text := strings.Replace(string(data), "no_drift: false}", "no_drift: false, min_shadow_agreement: 0.9, accuracy_not_worse: true}", 1)
	require.NoError(t, os.WriteFile(h.path, []byte(text), 0o600))
	h.ev.agree = map[string]float64{"v2": 0.95}
	// 90.0 % against 89.0 %: within noise at these counts.
	h.ev.acc = map[string][2]int64{"v1": {900, 1000}, "v2": {890, 1000}}
	h.c = h.newController()
	h.c.Evaluate()
	h.healthyStep()
	require.Equal(t, "v1=95 v2=5", h.weights(), "both judge gates pass")
	verdicts := map[string]string{}
	for _, g := range h.status().Gates {
		verdicts[g.Name] = g.Verdict
	}
	assert.Equal(t, VerdictPass, verdicts["min_shadow_agreement"])
	assert.Equal(t, VerdictPass, verdicts["accuracy_not_worse"])

	// 90 % against 80 % on 2,000 labels each is worse beyond chance.
	h.ev.acc = map[string][2]int64{"v1": {1800, 2000}, "v2": {1600, 2000}}
	h.healthyStep()
	assert.Equal(t, "v1=100 v2=0", h.weights())
	st := h.status()
	assert.Contains(t, st.Decision, "accuracy_not_worse")
}

// The default baseline is the other version with the most weight: here
// v3, which gives up its weight to the candidate.
func TestDefaultBaselineIsTheHeaviestOther(t *testing.T) {
	h := newHarness(t, "rollback", false)
	data, err := os.ReadFile(h.path)
	require.NoError(t, err)
	text := strings.Replace(string(data), "    rollout:\n", "      - name: v3\n        weight: 1\n        endpoints: [\"http://127.0.0.1:3\"]\n    rollout:\n", 1)
	text = strings.Replace(text, "weight: 100", "weight: 0", 1)
	require.NoError(t, os.WriteFile(h.path, []byte(text), 0o600))
	h.c = h.newController()
	h.c.Evaluate()
	assert.Equal(t, "v3", h.status().Baseline)
	assert.Equal(t, "v1=0 v2=0.01 v3=0.99", h.weights())
}

func TestBothVersionsAtZeroIsAnError(t *testing.T) {
	h := newHarness(t, "rollback", false)
	data, err := os.ReadFile(h.path)
	require.NoError(t, err)
	// A third version carries the traffic; the pair has nothing to move.
	text := strings.Replace(string(data), "    rollout:\n", "      - name: v3\n        weight: 1\n        endpoints: [\"http://127.0.0.1:3\"]\n    rollout:\n", 1)
	text = strings.Replace(text, "weight: 100", "weight: 0", 1)
	text = strings.Replace(text, "candidate: v2\n", "candidate: v2\n      baseline: v1\n", 1)
	require.NoError(t, os.WriteFile(h.path, []byte(text), 0o600))
	h.c = h.newController()
	h.c.Evaluate()
	st := h.status()
	assert.Equal(t, StateError, st.State)
	assert.Contains(t, st.Decision, "both weigh 0")
	assert.Equal(t, "v1=0 v2=0 v3=1", h.weights())
}

// failingWriter refuses writes until ok is set.
type failingWriter struct {
	fileWriter
	ok *bool
}

func (w failingWriter) SetWeights(model string, ws map[string]float64, note string) error {
	if !*w.ok {
		return os.ErrPermission
	}
	return w.fileWriter.SetWeights(model, ws, note)
}

func TestAFailedFirstWriteIsRetried(t *testing.T) {
	h := newHarness(t, "rollback", false)
	ok := false
	c, err := New(Options{Evidence: h.ev, Writer: failingWriter{fileWriter{h.ed}, &ok}, Now: h.clk.now})
	require.NoError(t, err)
	cfg, _, err := configs.Load(h.path)
	require.NoError(t, err)
	c.Configure(cfg)
	h.c = c
	c.Evaluate()
	assert.Contains(t, h.status().Decision, "writing step 1% failed")
	assert.Equal(t, "v1=100 v2=0", h.weights())
	ok = true
	c.Evaluate()
	assert.Equal(t, "v1=99 v2=1", h.weights())
}

func TestSettingTheCandidateToZeroStopsTheRollout(t *testing.T) {
	h := newHarness(t, "rollback", false)
	h.c.Evaluate()
	h.healthyStep()
	require.Equal(t, "v1=95 v2=5", h.weights())
	_, err := h.ed.Set("iris", map[string]float64{"v1": 100, "v2": 0}, "vane weights set", "")
	require.NoError(t, err)
	h.healthyStep()
	st := h.status()
	assert.Equal(t, StatePaused, st.State)
	assert.Contains(t, st.Decision, "set to 0 by vane weights set")
	assert.Equal(t, "v1=100 v2=0", h.weights())
	// Across a restart too.
	h.c = h.newController()
	h.healthyStep()
	assert.Equal(t, StatePaused, h.status().State)
	assert.Equal(t, "v1=100 v2=0", h.weights())
	// A step set by hand resumes it from there.
	_, err = h.ed.Set("iris", map[string]float64{"v1": 75, "v2": 25}, "vane weights set", "")
	require.NoError(t, err)
	h.c.Evaluate()
	assert.Equal(t, StateProgressing, h.status().State)
	assert.Equal(t, 3, h.status().Step)
}
