package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// Backends that misbehave on the wire. Each passes its health probes (GET
// answers 200) so that requests reach it, and breaks the exchange of every
// POST in its own way. Whatever the backend does, the client must get a
// well-formed HTTP answer, vane must keep serving, and no goroutine may be
// left behind.

// faultyBackend is a backend on a raw TCP listener.
type faultyBackend struct {
	ln  net.Listener
	url string
	// fault handles a POST whose request was read; it returns whether the
	// connection may serve another request.
	fault      func(b *faultyBackend, c *net.TCPConn) bool
	posts      atomic.Int64 // POSTs received
	peerClosed atomic.Int64 // connections vane closed while the backend hung

	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newFaulty(t *testing.T, fault func(b *faultyBackend, c *net.TCPConn) bool) *faultyBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &faultyBackend{ln: ln, url: "http://" + ln.Addr().String(), fault: fault, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.serve()
	t.Cleanup(b.close)
	return b
}

func (b *faultyBackend) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() {
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
				_ = c.Close()
			}()
			b.handle(c.(*net.TCPConn))
		}()
	}
}

func (b *faultyBackend) handle(c *net.TCPConn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if req.Method != http.MethodPost {
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
				return
			}
			continue
		}
		b.posts.Add(1)
		if !b.fault(b, c) {
			return
		}
	}
}

// close stops accepting, closes every connection and waits for the
// handlers.
func (b *faultyBackend) close() {
	_ = b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// reset closes c with an RST instead of a FIN.
func reset(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

// The faults.
var (
	answer503 = func(_ *faultyBackend, c *net.TCPConn) bool {
		_, err := io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
		return err == nil
	}
	hang = func(b *faultyBackend, c *net.TCPConn) bool {
		// Say nothing; vane is expected to give up at the model's timeout
		// and close the connection (EOF here).
		_, err := c.Read(make([]byte, 1))
		if errors.Is(err, io.EOF) {
			b.peerClosed.Add(1)
		}
		return false
	}
	resetInHeaders = func(_ *faultyBackend, c *net.TCPConn) bool {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: appl")
		time.Sleep(10 * time.Millisecond)
		reset(c)
		return false
	}
	resetInBody = func(_ *faultyBackend, c *net.TCPConn) bool {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"predictions\":[1,")
		time.Sleep(10 * time.Millisecond)
		reset(c)
		return false
	}
	closeInBody = func(_ *faultyBackend, c *net.TCPConn) bool {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"predictions\":[1,")
		return false // handle's caller closes: a FIN half-way through the body
	}
	garbageThenClose = func(_ *faultyBackend, c *net.TCPConn) bool {
		_, _ = c.Write([]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n"))
		return false
	}
	garbageThenWait = func(b *faultyBackend, c *net.TCPConn) bool {
		_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n")
		return hang(b, c)
	}
)

// faultTimeout is the model timeout of the fault tests.
const faultTimeout = 300 * time.Millisecond

// faultConfig: model iris with v1 on the faulty backend and v2 healthy,
// 50/50, a timeout of faultTimeout, extra model keys (indented by four)
// and otherwise the default health, breaker and retry settings.
func faultConfig(v1URL, v2URL, protocol, extra string) string {
	c := strings.Replace(twoVersions(v1URL, v2URL, 1, 1, extra), "timeout: 2s", "timeout: "+faultTimeout.String(), 1)
	return strings.Replace(c, "protocol: kserve-v1", "protocol: "+protocol, 1)
}

// wellFormed checks one answer of vane to a request that hit a fault: the
// HTTP exchange completed (status, headers and a body of the announced
// length), and an error status carries vane's JSON error.
func wellFormed(t *testing.T, resp *http.Response, body []byte, readErr error) {
	t.Helper()
	require.NoError(t, readErr, "the answer's body must be complete")
	if resp.StatusCode >= 400 {
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), "status %d", resp.StatusCode)
		assert.NotEmpty(t, errorField(string(body)), "status %d body %q", resp.StatusCode, body)
		assert.Len(t, resp.Header.Get("X-Request-Id"), 32)
	}
}

// waitAllRoutable waits until every version of every model has passed a
// probe (startVane waits for one routable version per model only).
func waitAllRoutable(t *testing.T, srv *Server) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, m := range srv.Status().Models {
			for _, ver := range m.Versions {
				if !ver.Healthy {
					return false
				}
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond, "some version never passed a probe")
}

func doPinned(t *testing.T, client *http.Client, url, version string) (*http.Response, []byte, error, time.Duration) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"instances":[[1,2,3,4]]}`))
	require.NoError(t, err)
	if version != "" {
		req.Header.Set("X-Vane-Version", version)
	}
	start := time.Now()
	resp, err := client.Do(req)
	require.NoError(t, err, "vane must answer")
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err, time.Since(start)
}

// TestBackendFaults runs each misbehaving backend as v1 beside a healthy
// v2: requests pinned to v1 get the expected status as a complete answer
// (vane's JSON error for errors) within the model's timeout, and v2 and
// unpinned requests keep being served.
func TestBackendFaults(t *testing.T) {
	before := goleak.IgnoreCurrent()
	cases := []struct {
		name  string
		fault func(*faultyBackend, *net.TCPConn) bool
		want  int
		// retried: an unpinned request that meets the fault is retried on
		// v2 and succeeds; timeouts are not retried.
		retried bool
	}{
		{"answers 503", answer503, http.StatusServiceUnavailable, true},
		{"hangs", hang, http.StatusGatewayTimeout, false},
		{"resets mid-headers", resetInHeaders, http.StatusBadGateway, true},
		{"resets mid-body", resetInBody, http.StatusBadGateway, true},
		{"closes half-way through the body", closeInBody, http.StatusBadGateway, true},
		{"answers garbage and closes", garbageThenClose, http.StatusBadGateway, true},
		{"answers garbage and waits", garbageThenWait, http.StatusBadGateway, true},
	}
	const pinned = 4
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			unpinned := 12
			if !tc.retried {
				unpinned = 4 // half of them wait for the timeout
			}
			bad := newFaulty(t, tc.fault)
			good := backend(t, "v2")
			v := startVane(t, faultConfig(bad.url, good.URL, "kserve-v1", ""))
			waitAllRoutable(t, v.srv)
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			url := v.url + "/v1/models/iris:predict"

			var slowest time.Duration
			for i := range pinned {
				resp, body, err, took := doPinned(t, client, url, "v1")
				wellFormed(t, resp, body, err)
				assert.Equal(t, tc.want, resp.StatusCode, "pinned request %d: %s", i, body)
				assert.Equal(t, "v1", resp.Header.Get("X-Vane-Version"))
				slowest = max(slowest, took)
			}
			if tc.want == http.StatusGatewayTimeout {
				assert.GreaterOrEqual(t, slowest, faultTimeout, "504 comes at the model's timeout")
			}
			assert.Less(t, slowest, faultTimeout+time.Second, "no answer waits much beyond the model's timeout")

			// vane keeps serving: the healthy version answers, and unpinned
			// requests that meet the fault are retried on it.
			resp, body, err, _ := doPinned(t, client, url, "v2")
			wellFormed(t, resp, body, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			assert.Equal(t, "v2", resp.Header.Get("X-Vane-Version"))
			codes := map[int]int{}
			for range unpinned {
				resp, body, err, _ := doPinned(t, client, url, "")
				wellFormed(t, resp, body, err)
				codes[resp.StatusCode]++
			}
			if tc.retried {
				assert.Equal(t, map[int]int{200: unpinned}, codes, "unpinned requests are retried on v2")
			} else {
				assert.Equal(t, unpinned, codes[200]+codes[tc.want], "unpinned: %v", codes)
			}
			if tc.want == http.StatusGatewayTimeout {
				// vane closed each connection it gave up on.
				hung := bad.posts.Load()
				require.Eventually(t, func() bool { return bad.peerClosed.Load() == hung }, 2*time.Second, 10*time.Millisecond,
					"vane must close each of the %d upstream connections it timed out", hung)
			}
			reasons := map[string]float64{}
			for _, r := range []string{"connect", "reset", "timeout", "other"} {
				if n := metricSum(t, v.admin, "vane_upstream_errors_total", `version="v1"`, `reason="`+r+`"`); n > 0 {
					reasons[r] = n
				}
			}
			t.Logf("pinned to v1: %d x %d (slowest %s); unpinned: %v; the backend saw %d POSTs; upstream errors %v",
				pinned, tc.want, slowest.Round(time.Millisecond), codes, bad.posts.Load(), reasons)
			client.CloseIdleConnections()
			require.NoError(t, v.stop())
		})
	}
	goleak.VerifyNone(t, append(fasthttpBackground, before)...)
}

// TestBackendKilledAndRestarted kills a backend (listener and connections
// closed) and starts it again on the same port: while it is gone, requests
// pinned to it get vane's JSON 502 (or 503 once its breaker opens) and the
// others are retried on the healthy version; once it is back it serves
// again within the breaker's open_for plus a probe.
func TestBackendKilledAndRestarted(t *testing.T) {
	before := goleak.IgnoreCurrent()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	var posts atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"predictions":[1]}`)
	})
	srv := &http.Server{Handler: handler}
	go func() { _ = srv.Serve(ln) }()
	good := backend(t, "v2")
	const openFor = 500 * time.Millisecond
	v := startVane(t, faultConfig("http://"+addr, good.URL, "kserve-v1", fmt.Sprintf(
		"    health:\n      interval: 100ms\n      timeout: 50ms\n    circuit_breaker:\n      open_for: %s\n      half_open_requests: 1\n", openFor)))
	waitAllRoutable(t, v.srv)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	url := v.url + "/v1/models/iris:predict"

	for range 5 { // pooled upstream connections to v1 exist
		resp, body, err, _ := doPinned(t, client, url, "v1")
		wellFormed(t, resp, body, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	require.NoError(t, srv.Close()) // killed: listener and connections closed

	codes := map[int]int{}
	for range 5 {
		resp, body, err, _ := doPinned(t, client, url, "v1")
		wellFormed(t, resp, body, err)
		codes[resp.StatusCode]++
	}
	assert.Equal(t, 5, codes[502]+codes[503], "v1 is down: %v", codes)
	unpinned := map[int]int{}
	for range 20 {
		resp, body, err, _ := doPinned(t, client, url, "")
		wellFormed(t, resp, body, err)
		unpinned[resp.StatusCode]++
	}
	assert.Equal(t, map[int]int{200: 20}, unpinned, "requests that met the dead v1 are retried on v2")

	ln, err = net.Listen("tcp", addr) // restarted on the same port
	require.NoError(t, err)
	srv = &http.Server{Handler: handler}
	go func() { _ = srv.Serve(ln) }()
	restarted := time.Now()
	after := map[int]int{}
	for {
		resp, body, err, _ := doPinned(t, client, url, "v1")
		wellFormed(t, resp, body, err)
		after[resp.StatusCode]++
		if resp.StatusCode == http.StatusOK {
			break
		}
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "while its breaker is open: %s", body)
		require.Less(t, time.Since(restarted), openFor+2*time.Second, "v1 never came back")
		time.Sleep(20 * time.Millisecond)
	}
	back := time.Since(restarted)
	assert.Less(t, back, openFor+time.Second)
	t.Logf("while down, pinned: %v, unpinned: %v; after the restart: %v, serving again after %s",
		codes, unpinned, after, back.Round(time.Millisecond))

	client.CloseIdleConnections()
	require.NoError(t, v.stop())
	require.NoError(t, srv.Close())
	good.Close()
	goleak.VerifyNone(t, append(fasthttpBackground, before)...)
}

// TestUpstreamErrorsCountEachExchangeOnce: one request, one upstream
// exchange that fails, one vane_upstream_errors_total.
func TestUpstreamErrorsCountEachExchangeOnce(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		fault        func(*faultyBackend, *net.TCPConn) bool
	}{
		{"closed half-way", "other", closeInBody},
		{"timed out", "timeout", hang},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := newFaulty(t, tc.fault)
			v := startVane(t, faultConfig(bad.url, bad.url, "kserve-v1", "    retry:\n      attempts: 1\n"))
			waitAllRoutable(t, v.srv)
			resp, body := post(t, v.url+"/v1/models/iris:predict", "{}", map[string]string{"X-Vane-Version": "v1"})
			require.GreaterOrEqual(t, resp.StatusCode, 502, body)
			require.Equal(t, int64(1), bad.posts.Load(), "one exchange")
			assert.Equal(t, 1.0, metricSum(t, v.admin, "vane_upstream_errors_total", `version="v1"`, `reason="`+tc.reason+`"`))
			assert.Equal(t, 1.0, metricSum(t, v.admin, "vane_upstream_errors_total", `version="v1"`))
		})
	}
}

// TestAnswerBrokenByResetIsNotSentAgain: with retry.attempts 1 (no
// retries), a backend that received the request and began its answer
// before resetting the connection must not receive the request a second
// time: the inference ran, and vane_retries_total and the retry budget
// know of no retry.
func TestAnswerBrokenByResetIsNotSentAgain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(*faultyBackend, *net.TCPConn) bool
	}{
		{"reset in the headers", resetInHeaders},
		{"reset in the body", resetInBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := newFaulty(t, tc.fault)
			v := startVane(t, faultConfig(bad.url, bad.url, "kserve-v1", "    retry:\n      attempts: 1\n"))
			waitAllRoutable(t, v.srv)
			resp, body := post(t, v.url+"/v1/models/iris:predict", "{}", map[string]string{"X-Vane-Version": "v1"})
			assert.Equal(t, http.StatusBadGateway, resp.StatusCode, body)
			assert.Equal(t, int64(1), bad.posts.Load(), "the backend got the request more than once")
		})
	}
}

// TestStreamedAnswerBrokenByBackend: for a protocol whose answers are
// streamed (raw), a backend that resets the connection after the first
// event of a chunked stream must not produce an answer that looks complete
// to the client: the status (200) is already sent, so the only honest
// signal left is a body that does not end with the last chunk.
func TestStreamedAnswerBrokenByBackend(t *testing.T) {
	before := goleak.IgnoreCurrent()
	bad := newFaulty(t, func(_ *faultyBackend, c *net.TCPConn) bool {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"f\r\ndata: {\"t\":1}\n\n\r\n")
		time.Sleep(50 * time.Millisecond)
		reset(c)
		return false
	})
	good := backend(t, "v2")
	v := startVane(t, faultConfig(bad.url, good.URL, "raw", ""))
	waitAllRoutable(t, v.srv)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	url := v.url + "/v1/models/iris:predict"
	truncatedSeen := 0
	for range 3 {
		resp, body, err, _ := doPinned(t, client, url, "v1")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "data: {\"t\":1}\n\n", string(body))
		if err != nil {
			truncatedSeen++
		}
	}
	// vane keeps serving.
	resp, body, err, _ := doPinned(t, client, url, "v2")
	wellFormed(t, resp, body, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, 3.0, metricSum(t, v.admin, "vane_upstream_errors_total", `version="v1"`), "each broken stream is counted")
	client.CloseIdleConnections()
	require.NoError(t, v.stop())
	bad.close()
	good.Close()
	goleak.VerifyNone(t, append(fasthttpBackground, before)...)
	assert.Equal(t, 3, truncatedSeen, "a stream the backend broke must reach the client as a broken stream, "+
		"not as a complete answer (%d of 3 looked complete)", 3-truncatedSeen)
}

// A sized answer streamed to a raw-protocol client that the backend cuts
// half-way is one request in vane_requests_total, counted as vane's 502,
// not also as the backend's 200.
func TestCutStreamedAnswerCountedOnce(t *testing.T) {
	bad := newFaulty(t, closeInBody)
	cfg := strings.Replace(twoVersions(bad.url, bad.url, 1, 0, "    retry:\n      attempts: 1\n    health:\n      path: /\n"),
		"protocol: kserve-v1", "protocol: raw", 1)
	v := startVane(t, cfg)
	resp, _ := post(t, v.url+"/v1/models/iris:predict", "{}", nil)
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.Equal(t, 1.0, metricSum(t, v.admin, "vane_requests_total", `model="iris"`), "one request, counted once")
	assert.Equal(t, 1.0, metricSum(t, v.admin, "vane_requests_total", `model="iris"`, `code="502"`))
}
