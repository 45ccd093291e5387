package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/judge"
	"github.com/vaneproxy/vane/rollout"
)

// flakyBackend answers like backend, but once failing is set every fifth
// request gets a 500 (20 %).
func flakyBackend(t *testing.T, version string, failing *atomic.Bool) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if r.Method == http.MethodPost && failing.Load() && n.Add(1)%5 == 0 {
			http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-Backend-Version", version)
		fmt.Fprintf(w, `{"version":%q}`, version)
	}))
	t.Cleanup(s.Close)
	return s
}

// hook records the alerts posted to it.
type hook struct {
	mu     sync.Mutex // guards alerts
	alerts []map[string]any
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var as []map[string]any
	_ = json.NewDecoder(r.Body).Decode(&as)
	h.mu.Lock()
	h.alerts = append(h.alerts, as...)
	h.mu.Unlock()
}

func (h *hook) results() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, a := range h.alerts {
		if l, ok := a["labels"].(map[string]any); ok {
			out = append(out, fmt.Sprint(l["result"]))
		}
	}
	return out
}

func rolloutYAML(b1, b2, webhook string) string {
	return twoVersions(b1, b2, 100, 0, fmt.Sprintf(`    monitor:
      webhook_url: %q
    rollout:
      candidate: v2
      baseline: v1
      interval: 1ms
      gates: {min_requests: 40, no_drift: false, max_p99_ratio: 1000} # latency is not under test here (and noisy on a shared CPU)
`, webhook))
}

// startRollout runs vane from a file holding rolloutYAML with a webhook
// receiver, the rollout stepped only by Evaluate. It returns the vane, the
// receiver and the file's path.
func startRollout(t *testing.T, b1, b2 string) (*vane, *hook, string) {
	t.Helper()
	h := &hook{}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	path := writeConfig(t, rolloutYAML(b1, b2, hs.URL))
	return startVaneFile(t, path, Options{RolloutTick: -1}), h, path
}

// sendPinned sends n requests pinned to each version, as clients and the
// rollout's own traffic would, and requires that none failed at the
// transport.
func sendPinned(t *testing.T, url string, n int) {
	t.Helper()
	for _, v := range []string{"v1", "v2"} {
		for range n {
			resp, _ := post(t, url+"/v1/models/iris:predict", `{"instances":[[1,2,3,4]]}`, map[string]string{"X-Vane-Version": v})
			require.Contains(t, []int{200, 500}, resp.StatusCode)
		}
	}
}

func rolloutStatus(t *testing.T, admin string) rollout.Status {
	t.Helper()
	st := statusOfRunning(t, admin)
	require.Len(t, st.Rollouts, 1)
	return st.Rollouts[0]
}

func TestRolloutThroughTheProxyReachesAllTraffic(t *testing.T) {
	var never atomic.Bool
	b1, b2 := flakyBackend(t, "v1", &never), flakyBackend(t, "v2", &never)
	v, h, path := startRollout(t, b1.URL, b2.URL)

	v.srv.rollouts.Evaluate()
	require.Equal(t, "v1=99 v2=1", servedWeights(v.srv))
	for _, want := range []string{"v1=95 v2=5", "v1=75 v2=25", "v1=50 v2=50", "v1=0 v2=100"} {
		sendPinned(t, v.url, 45)
		time.Sleep(2 * time.Millisecond) // the 1ms interval, so that it has passed
		v.srv.rollouts.Evaluate()
		require.Equal(t, want, servedWeights(v.srv), rolloutStatus(t, v.admin).Decision)
	}
	st := rolloutStatus(t, v.admin)
	assert.Equal(t, rollout.StateComplete, st.State)
	assert.Equal(t, 5, st.Step)
	cfg, _, err := configs.Load(path)
	require.NoError(t, err)
	assert.Equal(t, "v1=0 v2=100", configs.FormatWeights(configs.WeightsOf(cfg)[0].Versions), "every step is in the file")
	assert.Equal(t, 100.0, rolloutStepMetric(t, v))
	require.Eventually(t, func() bool { return len(h.results()) == 5 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, []string{"advanced", "advanced", "advanced", "advanced", "completed"}, h.results())
}

func TestRolloutThroughTheProxyRollsBackAFailingCandidate(t *testing.T) {
	var ok, failing atomic.Bool
	b1, b2 := flakyBackend(t, "v1", &ok), flakyBackend(t, "v2", &failing)
	v, h, path := startRollout(t, b1.URL, b2.URL)

	v.srv.rollouts.Evaluate()
	sendPinned(t, v.url, 45)
	time.Sleep(2 * time.Millisecond)
	v.srv.rollouts.Evaluate()
	require.Equal(t, "v1=95 v2=5", servedWeights(v.srv))

	// Step 2: the candidate starts failing 20 % of its requests.
	failing.Store(true)
	sendPinned(t, v.url, 45)
	v.srv.rollouts.Evaluate()
	assert.Equal(t, "v1=100 v2=0", servedWeights(v.srv))
	st := rolloutStatus(t, v.admin)
	assert.Equal(t, rollout.StateRolledBack, st.State)
	var er *rollout.Gate
	for i := range st.Gates {
		if st.Gates[i].Name == "max_error_ratio" {
			er = &st.Gates[i]
		}
	}
	require.NotNil(t, er, "gate values in /status: %+v", st.Gates)
	assert.Equal(t, rollout.VerdictFail, er.Verdict)
	require.NotNil(t, er.Value)
	assert.InDelta(t, 20.0, *er.Value, 0.5, "9 of 45 failed against a clean baseline (floor 0.01): %s", er.Detail)
	assert.Contains(t, st.Decision, "max_error_ratio")
	assert.Equal(t, 0.0, rolloutStepMetric(t, v))
	require.Eventually(t, func() bool {
		r := h.results()
		return len(r) > 0 && r[len(r)-1] == "rolled_back"
	}, 10*time.Second, 10*time.Millisecond)

	// The journal says why, and rollback by hand would undo the rollback.
	hist, err := (&configs.WeightEditor{Path: path}).History("iris")
	require.NoError(t, err)
	last := hist[len(hist)-1]
	assert.Equal(t, rollout.Who, last.Who)
	assert.True(t, strings.HasPrefix(last.Note, "rollout failed at 5%"), last.Note)
}

// rolloutStepMetric reads vane_rollout_step{model="iris"} from /metrics'
// registry.
func rolloutStepMetric(t *testing.T, v *vane) float64 {
	t.Helper()
	n, err := testutil.GatherAndCount(v.reg, "vane_rollout_step")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	mfs, err := v.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "vane_rollout_step" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestEvidenceReadsTheRecorder: a version's evidence is its recorder's
// counts since the step started, p99 the upper bound of the bucket that
// holds it; a new step starts from zero.
func TestEvidenceReadsTheRecorder(t *testing.T) {
	for _, d := range []time.Duration{0, time.Microsecond, 10 * time.Microsecond, 999 * time.Microsecond,
		time.Millisecond, 1234567 * time.Microsecond, time.Hour} {
		i := judge.LatencyBucket(d)
		assert.Less(t, d, judge.BucketUpper(i), "%s below its bucket's upper bound", d)
		if i > 0 {
			assert.GreaterOrEqual(t, d, judge.BucketUpper(i-1), "%s at or above the bucket below", d)
		}
	}
	rec := new(judge.Recorder)
	rec.Record(200, time.Hour) // before the evidence: not in its step
	e := newVersionEvidence(rec)
	_, ok := e.traffic()
	assert.False(t, ok, "no answer in the step yet")
	for i := range 1000 {
		code := 200
		if i%10 == 0 {
			code = 503
		}
		rec.Record(code, time.Duration(i+1)*time.Millisecond)
	}
	tr, ok := e.traffic()
	require.True(t, ok)
	assert.Equal(t, int64(1000), tr.Requests)
	assert.Equal(t, int64(100), tr.Errors)
	assert.InDelta(t, float64(990*time.Millisecond), float64(tr.P99), 0.1*float64(990*time.Millisecond))
	e.startStep()
	_, ok = e.traffic()
	assert.False(t, ok, "a new step starts from zero")
}

// TestEvidenceSharesTheRecorder: with a rollout on, each answer is
// counted once, in the recorder GET /compare and the gates both read.
func TestEvidenceSharesTheRecorder(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	cmp, err := newComparison(&configs.Config{Feedback: configs.Feedback{MaxEntries: 1, TTL: time.Hour}},
		prometheus.NewRegistry(), time.Now)
	require.NoError(t, err)
	ev := newEvidence(nil, cmp)
	vm := m.forVersion("iris", "v2")
	vm.rec = cmp.recorder("iris", "v2")
	vm.evidence.Store(ev.forVersion("iris", "v2", true))
	require.Same(t, vm.rec, vm.evidence.Load().rec)
	for range 7 {
		vm.observe(200, time.Millisecond)
	}
	tr, ok := ev.Traffic("iris", "v2")
	require.True(t, ok)
	assert.Equal(t, int64(7), tr.Requests)
	assert.Equal(t, int64(7), vm.rec.Totals().Requests, "counted once")
	assert.Zero(t, testing.AllocsPerRun(100, func() { vm.observe(200, time.Millisecond) }), "observe allocates nothing")
}

// windowMonitor monitors the four iris features with the window
// detector, alerting on the first drifted window of 100 rows after a
// reference of 100.
const windowMonitor = `    monitor:
      window: 100
      consecutive: 1
      detector: window
      reference:
        warmup: 100
      features: [a, b, c, d]
`

// TestEvidenceDriftReadsTheMonitor checks the drift gate's source: no
// verdict before the candidate's first window is compared, then the alert
// state of its features.
func TestEvidenceDriftReadsTheMonitor(t *testing.T) {
	b1, b2 := toyIris(t, "v1"), toyIris(t, "v2")
	v := startVane(t, twoVersions(b1, b2, 100, 0, windowMonitor+`    rollout:
      candidate: v2
`))
	rng := rand.New(rand.NewPCG(3, 5))
	send := func(n int, shift float64) {
		for range n {
			body := fmt.Sprintf(`{"instances":[[%v,%v,%v,%v]]}`, 5+shift+rng.NormFloat64(), 5+rng.NormFloat64(), 5+rng.NormFloat64(), 5+rng.NormFloat64())
			resp, _ := post(t, v.url+"/v1/models/iris:predict", body, map[string]string{"X-Vane-Version": "v2"})
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
	}
	ev := v.srv.evidence
	send(100, 0)
	_, ok := ev.Drift("iris", "v2")
	assert.False(t, ok, "no verdict before a window is compared")
	send(100, 0)
	require.Eventually(t, func() bool { _, ok := ev.Drift("iris", "v2"); return ok }, 10*time.Second, 10*time.Millisecond)
	drifted, _ := ev.Drift("iris", "v2")
	assert.False(t, drifted)
	send(100, 4)
	require.Eventually(t, func() bool { d, _ := ev.Drift("iris", "v2"); return d }, 10*time.Second, 10*time.Millisecond,
		"a shifted feature raises the candidate's alert")
	_, ok = ev.Drift("iris", "v1")
	assert.False(t, ok, "v1 has no samples")
	tr, ok := ev.Traffic("iris", "v2")
	require.True(t, ok)
	assert.Equal(t, int64(300), tr.Requests, "every answer of the step counted")
}

// BenchmarkObserve is what every answer pays for its version's metrics:
// requests_total, the duration histogram, and the recorder GET /compare
// and, with a rollout, its gates read.
func BenchmarkObserve(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("rollout=%v", on), func(b *testing.B) {
			m, err := NewMetrics(prometheus.NewRegistry())
			require.NoError(b, err)
			cmp, err := newComparison(&configs.Config{Feedback: configs.Feedback{MaxEntries: 1, TTL: time.Hour}},
				prometheus.NewRegistry(), time.Now)
			require.NoError(b, err)
			vm := m.forVersion("iris", "v2")
			vm.rec = cmp.recorder("iris", "v2")
			vm.evidence.Store(newEvidence(nil, cmp).forVersion("iris", "v2", on))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					vm.observe(200, 3*time.Millisecond)
				}
			})
		})
	}
}

// BenchmarkProxyRollout is BenchmarkProxy's sample_rate=0 case with a
// rollout on the model, so every answer is also counted for its gates
// (the controller holds: min_requests is never reached).
func BenchmarkProxyRollout(b *testing.B) {
	cfg := twoVersions(fastBackend(b), fastBackend(b), 80, 20,
		"    routing:\n      sticky_header: x-user-id\n    monitor:\n      sample_rate: 0"+
			"\n      features: [sepal_length, sepal_width, petal_length, petal_width]\n"+
			"    rollout:\n      candidate: v2\n      gates: {min_requests: 1000000000, no_drift: false}\n")
	benchProxy(b, cfg)
}

// TestRolloutThroughTheProxyStoppedByDrift: the candidate's inputs drift
// at step 2, its drift alert is raised by the monitor, and the drift gate
// sends it back to 0.
func TestRolloutThroughTheProxyStoppedByDrift(t *testing.T) {
	b1, b2 := toyIris(t, "v1"), toyIris(t, "v2")
	path := writeConfig(t, twoVersions(b1, b2, 100, 0, windowMonitor+`    rollout:
      candidate: v2
      interval: 1ms
      gates: {min_requests: 20, max_p99_ratio: 1000}
`))
	v := startVaneFile(t, path, Options{RolloutTick: -1})
	rng := rand.New(rand.NewPCG(9, 1))
	send := func(version string, n int, shift float64) {
		for range n {
			body := fmt.Sprintf(`{"instances":[[%v,%v,%v,%v]]}`, 5+shift+rng.NormFloat64(), 5+rng.NormFloat64(), 5+rng.NormFloat64(), 5+rng.NormFloat64())
			resp, _ := post(t, v.url+"/v1/models/iris:predict", body, map[string]string{"X-Vane-Version": version})
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
	}
	v.srv.rollouts.Evaluate()
	require.Equal(t, "v1=99 v2=1", servedWeights(v.srv))
	send("v1", 50, 0)
	send("v2", 200, 0) // the reference, then a clean window
	require.Eventually(t, func() bool { _, ok := v.srv.evidence.Drift("iris", "v2"); return ok }, 10*time.Second, 10*time.Millisecond)
	v.srv.rollouts.Evaluate()
	require.Equal(t, "v1=95 v2=5", servedWeights(v.srv), rolloutStatus(t, v.admin).Decision)

	send("v1", 50, 0)
	send("v2", 100, 4) // step 2: the candidate's inputs drift
	require.Eventually(t, func() bool { d, _ := v.srv.evidence.Drift("iris", "v2"); return d }, 10*time.Second, 10*time.Millisecond)
	v.srv.rollouts.Evaluate()
	assert.Equal(t, "v1=100 v2=0", servedWeights(v.srv))
	st := rolloutStatus(t, v.admin)
	assert.Equal(t, rollout.StateRolledBack, st.State)
	assert.Contains(t, st.Decision, "gate no_drift failed")
	for _, g := range st.Gates {
		if g.Name == "no_drift" {
			assert.Equal(t, rollout.VerdictFail, g.Verdict)
		}
	}
}
