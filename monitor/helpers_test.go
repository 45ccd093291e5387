package monitor

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/vaneproxy/vane/configs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 28, 21, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a Monitor under test with its registry, clock and log.
type fixture struct {
	m     *Monitor
	reg   *prometheus.Registry
	clock *fakeClock
	log   *bytes.Buffer
}

func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), clock: newFakeClock(), log: &bytes.Buffer{}}
	if opts.Registerer == nil {
		opts.Registerer = f.reg
	}
	if opts.Now == nil {
		opts.Now = f.clock.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: f.log}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	m, err := New(opts)
	require.NoError(t, err)
	f.m = m
	return f
}

func (f *fixture) logText() string {
	lockedMu.Lock()
	defer lockedMu.Unlock()
	return f.log.String()
}

var lockedMu sync.Mutex // guards the fixtures' log buffers

type lockedWriter struct{ w *bytes.Buffer }

func (l *lockedWriter) Write(p []byte) (int, error) {
	lockedMu.Lock()
	defer lockedMu.Unlock()
	return l.w.Write(p)
}

// run starts f.m.Run until the test ends.
func (f *fixture) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// feed processes one exchange synchronously, as a worker would.
func (f *fixture) feed(model, version, req, resp string) {
	s := f.m.AcquireSample()
	s.Model, s.Version = model, version
	s.Input.Status = 200
	s.AppendReq([]byte(req))
	s.AppendResp([]byte(resp))
	f.m.process(&worker{}, s)
}

// feedRows feeds one kserve-v1 exchange per row, the prediction 0.
func (f *fixture) feedRows(model, version string, rows [][]float64) {
	for _, r := range rows {
		f.feed(model, version, v1Request(r), `{"predictions":[0]}`)
	}
}

// value is the metric's value and whether the series exists.
func (f *fixture) value(t *testing.T, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := f.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return metricValue(m), true
		}
	}
	return 0, false
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// version returns the report of model/version.
func (f *fixture) version(t *testing.T, model, version string) VersionReport {
	t.Helper()
	for _, mr := range f.m.Report().Models {
		if mr.Model != model {
			continue
		}
		for _, vr := range mr.Versions {
			if vr.Version == version {
				return vr
			}
		}
	}
	t.Fatalf("no report for %s/%s", model, version)
	return VersionReport{}
}

func featureOf(t *testing.T, vr VersionReport, name string) FeatureReport {
	t.Helper()
	for _, fr := range vr.Features {
		if fr.Feature == name {
			return fr
		}
	}
	t.Fatalf("no feature %q in report of %s", name, vr.Version)
	return FeatureReport{}
}

func testOf(t *testing.T, fr FeatureReport, method string) TestReport {
	t.Helper()
	for _, tr := range fr.Tests {
		if tr.Method == method {
			return tr
		}
	}
	t.Fatalf("no %s test on %s", method, fr.Feature)
	return TestReport{}
}

// config is a config of the given models, one worker, with its defaults
// applied as configs.Parse applies them: the monitor takes its settings as
// they are.
func config(models ...configs.Model) *configs.Config {
	c := &configs.Config{Sampling: configs.Sampling{QueueSize: 4096, Workers: 1}, Models: models}
	configs.ApplyDefaults(c)
	return c
}

// model is a kserve-v1 model with versions named as given.
func model(name string, mon configs.Monitor, versions ...string) configs.Model {
	m := configs.Model{Name: name, Protocol: configs.ProtocolKServeV1, Monitor: mon}
	for _, v := range versions {
		m.Versions = append(m.Versions, configs.Version{Name: v, Weight: 1, Endpoints: []string{"http://127.0.0.1:1"}})
	}
	return m
}

// v1Request is a kserve-v1 request of one list instance; the numbers are
// written so that they parse back to the same float64.
func v1Request(row []float64) string {
	b := []byte(`{"instances":[[`)
	for i, x := range row {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, x, 'g', -1, 64)
	}
	return string(append(b, "]]}"...))
}

// normals returns n rows of k standard normal values from a fixed seed.
func normals(rng interface{ NormFloat64() float64 }, n, k int, shift ...float64) [][]float64 {
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = make([]float64, k)
		for j := range rows[i] {
			rows[i][j] = rng.NormFloat64()
			if j < len(shift) {
				rows[i][j] += shift[j]
			}
		}
	}
	return rows
}
