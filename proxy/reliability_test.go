package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/vaneproxy/vane/configs"

	"github.com/vaneproxy/vane/internal/testutil"
)

// Reliability tests: many reloads under load, ConfigMap swaps, a monitor
// that cannot keep up, and overload. Each asserts counts. The long versions
// run with VANE_SOAK set (make soak); docs/reliability.md has the numbers.

// soak reports whether the long versions of the reliability tests run.
func soak() bool { return os.Getenv("VANE_SOAK") != "" }

// fasthttpBackground are fasthttp goroutines that outlive a stopped Server
// by design: each HostClient's idle-connection cleaner and each server
// worker pool's cleaner sleep for up to MaxIdleConnDuration (90s) and
// MaxIdleWorkerDuration (10s) before they notice there is nothing left to
// do; the server date updater and the TCP dialer's address cache are one
// per process.
var fasthttpBackground = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
}

// metricSum adds up the samples of the metric name on admin's /metrics
// page whose labels include every one of labels (each `key="value"`).
func metricSum(t *testing.T, admin, name string, labels ...string) float64 {
	t.Helper()
	sum := 0.0
	for _, line := range strings.Split(metricsText(t, admin), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		set := ""
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			set, rest = rest[:end+1], rest[end+1:]
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(set, l)
		}
		if !all {
			continue
		}
		f, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		require.NoError(t, err, line)
		sum += f
	}
	return sum
}

func reloadSuccesses(t *testing.T, admin string) int {
	t.Helper()
	return int(metricSum(t, admin, "vane_config_reloads_total", `result="success"`))
}

func v1Weight(t *testing.T, admin string) float64 {
	t.Helper()
	return statusOfRunning(t, admin).Models[0].Versions[0].Weight
}

// TestReloadsUnderLoad rewrites the config 30 times (100 with VANE_SOAK)
// while four clients send requests, alternating between the file watch
// alone and a SIGHUP (the reload channel) right after the write. Every
// rewrite must be applied, no request may fail, and each distinct config
// must be counted once as a successful reload.
func TestReloadsUnderLoad(t *testing.T) {
	n := 30
	if soak() {
		n = 100
	}
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	r := runFromFile(t, fileConfig(b1.URL, b2.URL, 500, 500))
	l := startLoad(t, r.url+"/v1/models/iris:predict", 4)
	require.Eventually(t, func() bool { return l.ok.Load() > 50 }, 5*time.Second, 5*time.Millisecond)

	start := time.Now()
	var slowest time.Duration
	for i := 1; i <= n; i++ {
		w := i // v1 gets i, v2 1000-i: every config differs from the last
		t0 := time.Now()
		writeAtomic(t, r.path, fileConfig(b1.URL, b2.URL, w, 1000-w))
		if i%2 == 0 {
			r.reload <- struct{}{}
		}
		require.Eventually(t, func() bool { return v1Weight(t, r.admin) == float64(w) },
			3*time.Second, 5*time.Millisecond, "rewrite %d (v1=%d) not applied within 3s", i, w)
		slowest = max(slowest, time.Since(t0))
	}
	// Let every trigger that is still pending (debounce 50ms) run.
	time.Sleep(300 * time.Millisecond)
	l.end()
	t.Logf("%d reloads in %s (slowest applied after %s); %d requests ok, %d failed",
		n, time.Since(start).Round(time.Millisecond), slowest.Round(time.Millisecond), l.ok.Load(), l.failed.Load())
	assert.Zero(t, l.failed.Load(), "failures: %v", l.samples)
	assert.Greater(t, l.ok.Load(), int64(n))
	assert.Equal(t, float64(n), v1Weight(t, r.admin), "the last rewrite is the one serving")
	assert.Zero(t, metricSum(t, r.admin, "vane_config_reloads_total", `result="failure"`))
	// Each distinct config counts once, whether the file watch, the
	// SIGHUP or both saw it.
	got := reloadSuccesses(t, r.admin)
	t.Logf("vane_config_reloads_total{result=\"success\"} = %d for %d distinct configs", got, n)
	assert.Equal(t, n, got)
}

// TestFileChangeAndSIGHUPCountOneReload: an operator edits the file and
// sends SIGHUP, as the docs suggest. The file watch sees the same change a
// moment later. One new config was applied, so one successful reload must
// be counted.
func TestFileChangeAndSIGHUPCountOneReload(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	r := runFromFile(t, fileConfig(b1.URL, b2.URL, 500, 500))
	writeAtomic(t, r.path, fileConfig(b1.URL, b2.URL, 1, 999))
	r.reload <- struct{}{}
	require.Eventually(t, func() bool { return v1Weight(t, r.admin) == 1 }, 3*time.Second, 5*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // the watch's debounce is 50ms
	assert.Equal(t, 1, reloadSuccesses(t, r.admin), "one config applied, counted as one reload")
}

// configMapDir lays a directory out as kubelet does for a ConfigMap
// volume: vane.yaml -> ..data/vane.yaml, ..data -> ..<timestamp>/.
type configMapDir struct {
	dir string
	n   int
}

func newConfigMapDir(t *testing.T, content string) *configMapDir {
	t.Helper()
	c := &configMapDir{dir: t.TempDir()}
	c.swap(t, content)
	require.NoError(t, os.Symlink("..data/vane.yaml", filepath.Join(c.dir, "vane.yaml")))
	return c
}

func (c *configMapDir) path() string { return filepath.Join(c.dir, "vane.yaml") }

// swap is one ConfigMap update: a new timestamped directory, "..data_tmp"
// pointed at it and renamed over "..data", the old directory removed.
func (c *configMapDir) swap(t *testing.T, content string) {
	t.Helper()
	c.n++
	ts := filepath.Join(c.dir, fmt.Sprintf("..2026_11_29_10_00_%02d.%09d", c.n%60, c.n))
	require.NoError(t, os.Mkdir(ts, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ts, "vane.yaml"), []byte(content), 0o644))
	old, _ := os.Readlink(filepath.Join(c.dir, "..data"))
	require.NoError(t, os.Symlink(filepath.Base(ts), filepath.Join(c.dir, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(c.dir, "..data_tmp"), filepath.Join(c.dir, "..data")))
	if old != "" {
		require.NoError(t, os.RemoveAll(filepath.Join(c.dir, old)))
	}
}

// TestConfigMapSwapsAppliedExactlyOnce repeats the kubelet ConfigMap swap
// 15 times (50 with VANE_SOAK), waiting for each to apply: every change is
// applied, none is missed, none is applied twice.
func TestConfigMapSwapsAppliedExactlyOnce(t *testing.T) {
	n := 15
	if soak() {
		n = 50
	}
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	cm := newConfigMapDir(t, fileConfig(b1.URL, b2.URL, 500, 500))
	admin := runAt(t, cm.path()).admin
	require.Equal(t, 0, reloadSuccesses(t, admin))

	var slowest time.Duration
	for i := 1; i <= n; i++ {
		w := i
		t0 := time.Now()
		cm.swap(t, fileConfig(b1.URL, b2.URL, w, 1000-w))
		require.Eventually(t, func() bool { return v1Weight(t, admin) == float64(w) },
			3*time.Second, 5*time.Millisecond, "swap %d not applied within 3s", i)
		slowest = max(slowest, time.Since(t0))
		// The counter moves right after the snapshot is published.
		require.Eventually(t, func() bool { return reloadSuccesses(t, admin) >= i }, time.Second, 5*time.Millisecond)
		require.Equal(t, i, reloadSuccesses(t, admin), "after swap %d", i)
	}
	time.Sleep(300 * time.Millisecond) // a late duplicate would show now
	assert.Equal(t, n, reloadSuccesses(t, admin), "each swap applied exactly once")
	assert.Zero(t, metricSum(t, admin, "vane_config_reloads_total", `result="failure"`))
	t.Logf("%d swaps, each applied once; slowest applied after %s", n, slowest.Round(time.Millisecond))
}

// TestSlowMonitorDropsSamplesNotRequests: with a sample queue of one and
// bodies of ~40 KiB that take the monitor a while to decode, a burst from
// eight clients must be answered 200 every time; the monitor drops samples
// and counts them, and every request is accounted for as either a sample
// taken off the queue or a counted drop.
func TestSlowMonitorDropsSamplesNotRequests(t *testing.T) {
	be := backend(t, "v1")
	cfg := "sampling:\n  queue_size: 1\n  workers: 1\n" +
		twoVersions(be.URL, be.URL, 1, 0, "    monitor:\n      features: [a, b, c, d]\n")
	v := startVane(t, cfg)

	rows := make([]string, 1000)
	for i := range rows {
		rows[i] = fmt.Sprintf("[%d.25,%d.5,%d.75,%d.125]", i, i+1, i+2, i+3)
	}
	body := `{"instances":[` + strings.Join(rows, ",") + `]}`
	const workers, each = 8, 60
	n := workers * each
	if soak() {
		n = workers * 1000
	}
	var ok, bad atomic.Int64
	var once sync.Once
	var firstBad string
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				resp, err := client.Post(v.url+"/v1/models/iris:predict", "application/json", strings.NewReader(body))
				if err != nil {
					bad.Add(1)
					once.Do(func() { firstBad = err.Error() })
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					bad.Add(1)
					once.Do(func() { firstBad = resp.Status })
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	assert.Zero(t, bad.Load(), "first failure: %s", firstBad)
	assert.Equal(t, int64(n), ok.Load())

	full := metricSum(t, v.admin, "vane_monitor_samples_dropped_total", `model="iris"`, `reason="queue_full"`)
	assert.Greater(t, full, 0.0, "a queue of one must overflow under this burst")
	// Every sampled request ends up either taken off the queue or dropped
	// with a reason, once the worker has emptied the queue.
	var taken, dropped float64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		taken = metricSum(t, v.admin, "vane_monitor_samples_total", `model="iris"`)
		dropped = metricSum(t, v.admin, "vane_monitor_samples_dropped_total", `model="iris"`)
		if taken+dropped == float64(n) || time.Now().After(deadline) {
			break
		}
	}
	assert.Equal(t, float64(n), taken+dropped, "samples taken %v + dropped %v must account for every request", taken, dropped)
	assert.Equal(t, float64(n), metricSum(t, v.admin, "vane_requests_total", `model="iris"`, `code="200"`))
	t.Logf("%d requests of %d bytes in %s, all 200; monitor took %v, dropped %v (queue_full %v)",
		n, len(body), took.Round(time.Millisecond), taken, dropped, full)
}

// connCounter counts a test server's open connections and their peak.
type connCounter struct {
	open, peak, total atomic.Int64
}

func (c *connCounter) hook(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		c.total.Add(1)
		storeMax(&c.peak, c.open.Add(1))
	case http.StateClosed, http.StateHijacked:
		c.open.Add(-1)
	}
}

// storeMax raises a to n if n is larger.
func storeMax(a *atomic.Int64, n int64) {
	for {
		p := a.Load()
		if n <= p || a.CompareAndSwap(p, n) {
			return
		}
	}
}

// TestOverloadShedsAndRecovers sends ten times the load an endpoint may
// take (limits.endpoint_concurrency 4, a backend that needs 50ms a
// request, 40 clients): every answer is 200 or 503 with Retry-After, none
// takes longer than the model's timeout, the backend never sees more
// connections than the limit allows, and afterwards the goroutines go back
// to where they were.
func TestOverloadShedsAndRecovers(t *testing.T) {
	before := goleak.IgnoreCurrent()
	const limit, clients = 4, 40
	dur := 2 * time.Second
	if soak() {
		dur = 30 * time.Second
	}
	var inside, peakInside atomic.Int64
	var conns connCounter
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost {
			storeMax(&peakInside, inside.Add(1))
			defer inside.Add(-1)
			select {
			case <-time.After(50 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"predictions":[1]}`)
	}))
	be.Config.ConnState = conns.hook
	be.Start()
	defer be.Close()
	cfg := twoVersions(be.URL, be.URL, 1, 0, fmt.Sprintf("    limits:\n      endpoint_concurrency: %d\n", limit))
	v := startVane(t, cfg)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	// Warm up one request so pools exist, then take the baseline.
	resp, _, err, _ := doPinned(t, client, v.url+"/v1/models/iris:predict", "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	client.CloseIdleConnections()
	time.Sleep(50 * time.Millisecond)
	// The backend's goroutines serving vane's pooled upstream connections
	// (one each) are counted apart, through conns.open.
	baseline, _ := goroutines()
	baseline -= int(conns.open.Load())

	var ok, shed, other, errs atomic.Int64
	var slowest atomic.Int64
	var mu sync.Mutex
	var samples []string
	note := func(s string) {
		mu.Lock()
		if len(samples) < 5 {
			samples = append(samples, s)
		}
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				resp, err := client.Post(v.url+"/v1/models/iris:predict", "application/json", strings.NewReader(`{"instances":[[1,2,3,4]]}`))
				if err != nil {
					errs.Add(1)
					note(err.Error())
					continue
				}
				b, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				storeMax(&slowest, int64(time.Since(t0)))
				switch {
				case err != nil:
					errs.Add(1)
					note(err.Error())
				case resp.StatusCode == http.StatusOK:
					ok.Add(1)
				case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "1" &&
					strings.Contains(string(b), `"error"`):
					shed.Add(1)
				default:
					other.Add(1)
					note(fmt.Sprintf("%s %s", resp.Status, b))
				}
			}
		}()
	}
	wg.Wait()
	total := ok.Load() + shed.Load() + other.Load() + errs.Load()
	t.Logf("%d requests in %s: %d ok, %d shed (503 + Retry-After), %d other, %d errors; slowest %s; "+
		"backend: %d in a handler at most, %d connections at most (%d opened)",
		total, dur, ok.Load(), shed.Load(), other.Load(), errs.Load(), time.Duration(slowest.Load()).Round(time.Millisecond),
		peakInside.Load(), conns.peak.Load(), conns.total.Load())
	assert.Zero(t, other.Load(), "answers other than 200 and 503+Retry-After: %v", samples)
	assert.Zero(t, errs.Load(), "transport errors: %v", samples)
	assert.Positive(t, ok.Load())
	assert.Greater(t, shed.Load(), ok.Load(), "at ten times the limit most requests are shed")
	assert.Less(t, time.Duration(slowest.Load()), 2*time.Second, "no answer waits beyond the model's timeout (2s)")
	assert.LessOrEqual(t, peakInside.Load(), int64(limit), "the backend never runs more than the limit at once")
	// The limit's connections plus the two probers' (v1 and v2 share the URL).
	assert.LessOrEqual(t, conns.peak.Load(), int64(limit+2), "upstream connections stay bounded")

	// After the load, every goroutine it started ends, except fasthttp's
	// idle workers: the server keeps one per recently busy connection for
	// up to 2 x MaxIdleWorkerDuration (10s) before it reaps it, so their
	// number is bounded by the peak concurrency, not by the requests.
	client.CloseIdleConnections()
	var busy, idle int
	for t1 := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		busy, idle = goroutines()
		busy -= int(conns.open.Load())
		if busy <= baseline+2 || time.Since(t1) > 5*time.Second {
			break
		}
	}
	t.Logf("goroutines: %d before the load; after it %d, plus %d idle fasthttp workers and %d upstream connections",
		baseline, busy, idle, conns.open.Load())
	assert.LessOrEqual(t, busy, baseline+2, "goroutines left after the load (idle workers aside)")
	assert.LessOrEqual(t, idle, clients+5, "idle workers are bounded by the peak number of connections")
	if soak() {
		for t1 := time.Now(); idle > 0 && time.Since(t1) < 25*time.Second; time.Sleep(100 * time.Millisecond) {
			_, idle = goroutines()
		}
		assert.Zero(t, idle, "idle workers are reaped after 2 x MaxIdleWorkerDuration")
	}
	assert.Zero(t, inFlight(v))
	assert.LessOrEqual(t, conns.open.Load(), int64(limit+2))
	// Once vane and the backend stop, nothing they started is left but
	// fasthttp's background cleaners.
	require.NoError(t, v.stop())
	be.Close()
	goleak.VerifyNone(t, append(fasthttpBackground, before)...)
}

// goroutines counts the live goroutines: idle are fasthttp server workers
// waiting for a connection, busy all the others.
func goroutines() (busy, idle int) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[chan receive") && strings.Contains(g, "fasthttp.(*workerPool).workerFunc") {
			idle++
		} else {
			busy++
		}
	}
	return busy, idle
}

// errorField returns the "error" member of a JSON body, or "" when the body
// is not a JSON object with one.
func errorField(body string) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(body), &e) != nil {
		return ""
	}
	return e.Error
}

// loggingVane serves yaml on loopback with a logger at debug level that
// writes into logs; it returns the data plane address.
func loggingVane(t *testing.T, yaml string, logs io.Writer) (*Server, string) {
	t.Helper()
	cfg, err := configs.Parse([]byte(yaml))
	require.NoError(t, err)
	reg := NewRegistry()
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(cfg, []byte(yaml), Options{Registerer: reg, Gatherer: reg, Logger: log})
	require.NoError(t, err)
	addr := serveLoopback(t, srv)
	waitAllRoutable(t, srv)
	return srv, addr
}

// logSecret is what the logging tests send and look for in the log.
const logSecret = "s3cr3t-PAYLOAD-4a7f"

func assertNotLogged(t *testing.T, logs *testutil.Buffer) {
	t.Helper()
	assert.NotEmpty(t, logs.String())
	for _, line := range strings.Split(logs.String(), "\n") {
		assert.NotContains(t, line, logSecret)
	}
}

// TestPayloadsNeverLogged sends a secret in bodies and headers through
// the paths that log (a good request, an upstream failure, a body the
// drift monitor cannot decode, refused and oversized requests) to a vane
// logging at debug level, and looks for it in the log.
func TestPayloadsNeverLogged(t *testing.T) {
	good := backend(t, "v1")
	bad := newFaulty(t, resetInBody)
	var logs testutil.Buffer
	_, addr := loggingVane(t, fmt.Sprintf(`
models:
  - name: iris
    match:
      path_prefix: /v1/models/iris
    protocol: kserve-v1
    timeout: 2s
    monitor:
      features: [a, b]
    versions:
      - name: v1
        endpoints: [%q]
      - name: broken
        weight: 0
        endpoints: [%q]
`, good.URL, bad.url), &logs)
	url := "http://" + addr + "/v1/models/iris:predict"

	body := `{"instances":[[1,2]],"note":"` + logSecret + `"}`
	hdr := map[string]string{"X-Api-Key": logSecret, "Authorization": "Bearer " + logSecret}
	resp, _ := post(t, url, body, hdr)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = post(t, url, logSecret+" is not JSON", hdr) // the monitor cannot decode it
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	hdr["X-Vane-Version"] = "broken"
	resp, _ = post(t, url, body, hdr)
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	for _, raw := range []string{
		"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nX-Big: " + logSecret + strings.Repeat("a", 64<<10) + "\r\n\r\n",
		"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n" + logSecret,
		"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + logSecret + "\r\n0\r\n\r\n",
		fmt.Sprintf("POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 65<<20, logSecret),
	} {
		answer := rawExchange(t, addr, raw)
		assert.True(t, strings.HasPrefix(answer, "HTTP/1.1 4"), answer[:min(len(answer), 80)])
	}
	time.Sleep(200 * time.Millisecond) // the monitor decodes off the request path
	assertNotLogged(t, &logs)
}

// TestMalformedRequestHeadersNotLogged: a request whose headers fasthttp
// cannot parse must not have its bytes (headers may carry credentials, and
// the buffer the start of the body) copied into the log, at any level.
func TestMalformedRequestHeadersNotLogged(t *testing.T) {
	good := backend(t, "v1")
	var logs testutil.Buffer
	_, addr := loggingVane(t, twoVersions(good.URL, good.URL, 1, 0, ""), &logs)
	for _, raw := range []string{
		"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + logSecret + "\r\nContent-Length: x\r\n\r\n{}",
		"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nContent-Length: " + logSecret + "\r\n\r\n{}",
	} {
		answer := rawExchange(t, addr, raw)
		assert.True(t, strings.HasPrefix(answer, "HTTP/1.1 400"), answer[:min(len(answer), 80)])
	}
	assertNotLogged(t, &logs)
}

// TestSlowClientsAreCutOff (VANE_SOAK only: it takes 60s) measures when
// vane closes connections of clients that stall: one that sends nothing
// (the protocol sniff gives up after 10s), one that trickles its headers a
// byte every 2s (the 60s read timeout), and an idle keep-alive connection
// (the 60s idle timeout). Deadlines may fire up to 1s late (lazy
// deadlines), never early.
func TestSlowClientsAreCutOff(t *testing.T) {
	if !soak() {
		t.Skip("takes 60s; set VANE_SOAK=1")
	}
	be := backend(t, "v1")
	v := startVane(t, twoVersions(be.URL, be.URL, 1, 0, ""))
	// closedAfter reads from c until vane closes it and returns how long
	// that took from start.
	closedAfter := func(t *testing.T, c net.Conn, start time.Time) time.Duration {
		_ = c.SetReadDeadline(time.Now().Add(150 * time.Second))
		_, _ = io.Copy(io.Discard, c)
		return time.Since(start)
	}
	cases := []struct {
		name     string
		min, max time.Duration
		run      func(c net.Conn)
	}{
		{"silent", 10 * time.Second, 12 * time.Second, func(net.Conn) {}},
		{"trickling headers", 60 * time.Second, 65 * time.Second, func(c net.Conn) {
			go func() {
				for _, b := range []byte("POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nX-Slow: ") {
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
				}
				for {
					time.Sleep(2 * time.Second)
					if _, err := c.Write([]byte("a")); err != nil {
						return
					}
				}
			}()
		}},
		{"idle keep-alive", 60 * time.Second, 65 * time.Second, func(c net.Conn) {
			_, _ = io.WriteString(c, "POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", v.addr)
			require.NoError(t, err)
			defer c.Close()
			start := time.Now()
			tc.run(c)
			took := closedAfter(t, c, start)
			t.Logf("%s: closed by vane after %s", tc.name, took.Round(100*time.Millisecond))
			assert.GreaterOrEqual(t, took, tc.min)
			assert.LessOrEqual(t, took, tc.max)
		})
	}
}
