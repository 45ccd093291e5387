package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// switchable is a backend whose behaviour a test changes while load runs.
type switchable struct {
	*httptest.Server
	version string
	fail    atomic.Bool  // answer 503 to everything, probes included
	served  atomic.Int64 // POSTs answered 200
}

func newSwitchable(t *testing.T, version string) *switchable {
	t.Helper()
	b := &switchable{version: version}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if b.fail.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.Method == http.MethodPost {
			b.served.Add(1)
		}
		w.Header().Set("X-Backend-Version", version)
		fmt.Fprintf(w, `{"predictions":[1],"version":%q}`, version)
	}))
	t.Cleanup(b.Close)
	return b
}

// failoverConfig: v1 on two endpoints, v2 on one, 50/50, short intervals.
func failoverConfig(v1a, v1b, v2 string) string {
	return fmt.Sprintf(`
models:
  - name: iris
    match:
      path_prefix: /v1/models/iris
    protocol: kserve-v1
    timeout: 2s
    health:
      interval: 50ms
      timeout: 40ms
      healthy_threshold: 2
      unhealthy_threshold: 2
    circuit_breaker:
      failure_ratio: 0.5
      min_requests: 5
      window: 2s
      open_for: 300ms
      half_open_requests: 2
    retry:
      attempts: 2
      budget_ratio: 0.5
    versions:
      - name: v1
        weight: 50
        endpoints: [%q, %q]
      - name: v2
        weight: 50
        endpoints: [%q]
`, v1a, v1b, v2)
}

// load sends requests from workers until stop is closed and tallies them.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	samples    []string
	wg         sync.WaitGroup
	stop       context.CancelFunc
}

func startLoad(t *testing.T, url string, workers int) *load {
	t.Helper()
	return startLoadChecked(t, url, workers, nil)
}

// startLoadChecked is startLoad that also counts a 200 answer as failed
// when good, if not nil, rejects it.
func startLoadChecked(t *testing.T, url string, workers int, good func(*http.Response) bool) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{stop: cancel}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				resp, err := httpClient.Post(url, "application/json", strings.NewReader(`{"instances":[[1,2,3,4]]}`))
				if err != nil {
					l.fail(err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK || (good != nil && !good(resp)) {
					l.fail(resp.Status)
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	t.Cleanup(l.end)
	return l
}

func (l *load) fail(s string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.samples) < 5 {
		l.samples = append(l.samples, s)
	}
	l.mu.Unlock()
}

func (l *load) end() { l.stop(); l.wg.Wait() }

func TestKilledEndpointCostsNoRequest(t *testing.T) {
	v1a, v1b, v2 := newSwitchable(t, "v1"), newSwitchable(t, "v1"), newSwitchable(t, "v2")
	v := startVane(t, failoverConfig(v1a.URL, v1b.URL, v2.URL))
	l := startLoad(t, v.url+"/v1/models/iris:predict", 4)
	require.Eventually(t, func() bool { return l.ok.Load() > 200 }, 5*time.Second, 10*time.Millisecond)
	// Kill one v1 endpoint the hard way: open connections reset, new
	// connections refused.
	v1a.CloseClientConnections()
	v1a.Close()
	before := l.ok.Load()
	require.Eventually(t, func() bool { return l.ok.Load() > before+500 }, 10*time.Second, 10*time.Millisecond)
	l.end()
	assert.Zero(t, l.failed.Load(), "clients saw failures: %v", l.samples)
	// The probes (every 50 ms, 2 failures) mark it down on their own
	// clock: 500 requests can finish before that without -race.
	assert.Eventually(t, func() bool { return !v.srv.Status().Models[0].Versions[0].Endpoints[0].Healthy },
		5*time.Second, 10*time.Millisecond, "the killed endpoint is marked down")
	assert.True(t, v.srv.Status().Models[0].Versions[0].Healthy, "v1 keeps serving on its other endpoint")
}

func TestFailingVersionLosesItsShareAndGetsItBack(t *testing.T) {
	v1a, v1b, v2 := newSwitchable(t, "v1"), newSwitchable(t, "v1"), newSwitchable(t, "v2")
	v := startVane(t, failoverConfig(v1a.URL, v1b.URL, v2.URL))
	l := startLoad(t, v.url+"/v1/models/iris:predict", 4)
	require.Eventually(t, func() bool { return v2.served.Load() > 100 }, 5*time.Second, 10*time.Millisecond)

	okBefore, failedBefore := l.ok.Load(), l.failed.Load()
	v2.fail.Store(true)
	require.Eventually(t, func() bool { return v.srv.Status().Models[0].Versions[1].Share == 0 },
		5*time.Second, 10*time.Millisecond, "v2 never lost its share")
	// Once vane knows, v2 receives nothing.
	time.Sleep(100 * time.Millisecond)
	servedAtDown := v2.served.Load()
	okAtDown := l.ok.Load()
	require.Eventually(t, func() bool { return l.ok.Load() > okAtDown+300 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, servedAtDown, v2.served.Load(), "a down version must receive no requests")
	during := l.ok.Load() - okBefore + l.failed.Load() - failedBefore
	failed := l.failed.Load() - failedBefore
	assert.LessOrEqual(t, float64(failed), 0.01*float64(during), "%d of %d failed while vane found out: %v", failed, during, l.samples)
	page := metricsText(t, v.admin)
	assert.Contains(t, page, `vane_version_share{model="iris",version="v2"} 0`)
	assert.Contains(t, page, fmt.Sprintf(`vane_endpoint_healthy{endpoint=%q,model="iris",version="v2"} 0`, v2.URL))

	// Recovery: v2 gets its share back within seconds.
	v2.fail.Store(false)
	require.Eventually(t, func() bool { return v.srv.Status().Models[0].Versions[1].Share == 0.5 },
		5*time.Second, 10*time.Millisecond, "v2 never got its share back")
	servedAtUp := v2.served.Load()
	require.Eventually(t, func() bool { return v2.served.Load() > servedAtUp+100 }, 5*time.Second, 10*time.Millisecond)
	l.end()
}

func TestEveryEndpointDownAnswersFast(t *testing.T) {
	v1a, v1b, v2 := newSwitchable(t, "v1"), newSwitchable(t, "v1"), newSwitchable(t, "v2")
	v := startVane(t, failoverConfig(v1a.URL, v1b.URL, v2.URL))
	for _, b := range []*switchable{v1a, v1b, v2} {
		b.fail.Store(true)
	}
	for i := range 50 {
		start := time.Now()
		resp, body := post(t, v.url+"/v1/models/iris:predict", "{}", nil)
		took := time.Since(start)
		assert.GreaterOrEqual(t, resp.StatusCode, 500, "request %d", i)
		assert.Less(t, took, 500*time.Millisecond, "request %d took %s", i, took)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		assert.NotEmpty(t, body)
		time.Sleep(5 * time.Millisecond)
	}
	// After detection the answer is vane's own 503, without dialing anyone.
	require.Eventually(t, func() bool {
		resp, body := post(t, v.url+"/v1/models/iris:predict", "{}", nil)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(body, "no routable version")
	}, 3*time.Second, 10*time.Millisecond)
	assert.Contains(t, metricsText(t, v.admin), `vane_version_share{model="iris",version="v1"} 0`)
}

func TestBreakerResetNeedsTokenWhenConfigured(t *testing.T) {
	v1a, v1b, v2 := newSwitchable(t, "v1"), newSwitchable(t, "v1"), newSwitchable(t, "v2")
	dir := t.TempDir()
	tokenFile := dir + "/token"
	require.NoError(t, writeFile(tokenFile, "s3cret\n"))
	cfg := "admin:\n  token_file: " + tokenFile + "\n" + failoverConfig(v1a.URL, v1b.URL, v2.URL)
	v := startVane(t, cfg)
	resp, _ := post(t, v.admin+"/breakers/reset?model=iris", "", nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = post(t, v.admin+"/breakers/reset?model=iris", "", map[string]string{"Authorization": "Bearer wrong"})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, body := post(t, v.admin+"/breakers/reset?model=iris", "", map[string]string{"Authorization": "Bearer s3cret"})
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `"reset": 3`)
	resp, _ = post(t, v.admin+"/breakers/reset?model=nope", "", map[string]string{"Authorization": "Bearer s3cret"})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestEndpointConcurrencyLimitSheds(t *testing.T) {
	release := make(chan struct{})
	var inside atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		inside.Add(1)
		<-release
	}))
	defer be.Close()
	defer close(release)
	cfg := strings.Replace(twoVersions(be.URL, be.URL, 1, 0, ""), "    versions:", "    limits:\n      endpoint_concurrency: 2\n    versions:", 1)
	v := startVane(t, cfg)
	for range 2 {
		go func() {
			resp, err := http.Post(v.url+"/v1/models/iris:predict", "application/json", strings.NewReader("{}"))
			if err == nil {
				_ = resp.Body.Close()
			}
		}()
	}
	require.Eventually(t, func() bool { return inside.Load() == 2 }, 5*time.Second, 5*time.Millisecond)
	resp, body := post(t, v.url+"/v1/models/iris:predict", "{}", nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Contains(t, body, "concurrency limit")
}

func TestGuardReadsProtectsReadingEndpoints(t *testing.T) {
	be := backend(t, "v1")
	tokenFile := t.TempDir() + "/token"
	require.NoError(t, writeFile(tokenFile, "s3cret"))
	cfg := "admin:\n  token_file: " + tokenFile + "\n  guard_reads: true\n" + twoVersions(be.URL, be.URL, 1, 0, "")
	cfg = strings.Replace(cfg, "admin:\n  listen: \"127.0.0.1:1\"\n", "", 1)
	v := startVane(t, cfg) // /readyz stays open: startVane polls it without a token
	for _, path := range []string{"/metrics", "/status", "/drift"} {
		resp, err := http.Get(v.admin + path)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
		req, _ := http.NewRequest(http.MethodGet, v.admin+path, nil)
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	resp, err := http.Get(v.admin + "/healthz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestReloadNeedsTokenWhenConfigured(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	tokenFile := t.TempDir() + "/token"
	require.NoError(t, writeFile(tokenFile, "s3cret\n"))
	cfg := strings.Replace(fileConfig(b1.URL, b2.URL, 80, 20), "admin:\n", "admin:\n  token_file: "+tokenFile+"\n", 1)
	r := runFromFile(t, cfg)
	resp, body := post(t, r.admin+"/reload", "", nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
	assert.Contains(t, body, "bearer token")
	resp, _ = post(t, r.admin+"/reload", "", map[string]string{"Authorization": "Bearer nope"})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, body = post(t, r.admin+"/reload", "", map[string]string{"Authorization": "Bearer s3cret"})
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Contains(t, body, "config_hash")
}

// An open stream holds its endpoint's concurrency slot until its last
// byte: endpoint_concurrency counts streams, not only answers whose
// headers have not arrived yet.
func TestConcurrencyLimitCountsOpenStreams(t *testing.T) {
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "data: last\n\n")
	}))
	defer be.Close()
	cfg := strings.Replace(twoVersions(be.URL, be.URL, 1, 0, ""), "    versions:", "    limits:\n      endpoint_concurrency: 1\n    versions:", 1)
	v := startVane(t, cfg)

	req, _ := http.NewRequest(http.MethodPost, v.url+"/v1/models/iris:predict", strings.NewReader("{}"))
	req.Header.Set("Accept", "text/event-stream")
	stream, err := httpClient.Do(req)
	require.NoError(t, err)
	defer stream.Body.Close()
	require.Equal(t, http.StatusOK, stream.StatusCode)
	line, err := bufio.NewReader(stream.Body).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "data: first\n", line, "the stream is open")

	resp, body := post(t, v.url+"/v1/models/iris:predict", "{}", nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "the open stream holds the only slot")
	assert.Contains(t, body, "concurrency limit")

	close(release)
	_, _ = io.ReadAll(stream.Body)
	require.Eventually(t, func() bool {
		resp, _ := post(t, v.url+"/v1/models/iris:predict", "{}", nil)
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 20*time.Millisecond, "the slot comes back when the stream ends")
}
