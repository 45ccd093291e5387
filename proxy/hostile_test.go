package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The attacks of issue 10, each against a running vane: raw sockets, an
// HTTP/2 framer, raw-TCP misbehaving backends.

// A backend declaring a 100 GB answer (or sending more than the cap) gets
// its client a 502, counted as too_large, and vane's memory stays small:
// fasthttp used to allocate the declared size at once (out of memory in
// 20 ms). Streams (SSE) are not capped.
func TestHugeAnswersAreRefused(t *testing.T) {
	huge := hostileBackend(t, func(c net.Conn, r *http.Request, _ *bufio.Reader) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 107374182400\r\n\r\n{\"x\":")
		_, _ = c.Write(make([]byte, 64<<10))
		time.Sleep(100 * time.Millisecond)
	})
	chunked := hostileBackend(t, func(c net.Conn, r *http.Request, _ *bufio.Reader) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range 16 {
			_, _ = fmt.Fprintf(c, "%x\r\n%s\r\n", 4096, strings.Repeat("a", 4096))
		}
		_, _ = io.WriteString(c, "0\r\n\r\n")
	})
	sse := hostileBackend(t, func(c net.Conn, r *http.Request, _ *bufio.Reader) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range 16 {
			ev := "data: " + strings.Repeat("b", 4000) + "\n\n"
			_, _ = fmt.Fprintf(c, "%x\r\n%s\r\n", len(ev), ev)
		}
		_, _ = io.WriteString(c, "0\r\n\r\n")
	})
	for _, tc := range []struct {
		name, url, protocol string
		code                int
		limit               string
	}{
		{"kserve-v1, 100 GB declared", huge, "kserve-v1", 502, ""},
		{"raw, 100 GB declared", huge, "raw", 502, ""},
		{"tfserving, chunked over the cap", chunked, "tfserving", 502, "    limits: {max_response_bytes: 16384}\n"},
		{"openai, server-sent events over the cap", sse, "openai", 200, "    limits: {max_response_bytes: 16384}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := startVane(t, withModelKeys(hostileConfig(tc.url, tc.protocol, "5s", ""), tc.limit))
			start := time.Now()
			for range 3 {
				resp, body := post(t, v.url+"/v1/models/m:predict", "{}", nil)
				require.Equal(t, tc.code, resp.StatusCode, body)
				if tc.code == 502 {
					assert.Contains(t, body, "limits.max_response_bytes")
					assert.Contains(t, body, resp.Header.Get("X-Request-Id"))
				} else {
					assert.Len(t, body, 16*4008)
				}
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			t.Logf("3 requests in %v; heap in use after: %d MiB", time.Since(start), ms.HeapAlloc>>20)
			assert.Less(t, ms.HeapAlloc, uint64(256<<20), "vane's heap")
			if tc.code == 502 {
				assert.Equal(t, 3.0, metricSum(t, v.admin, "vane_upstream_errors_total", `reason="too_large"`))
			}
		})
	}
}

// endlessBackend streams an answer until its client goes (POST /stream),
// answers POST /fast at once and GET (probes) with 200.
func endlessBackend(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodGet || r.URL.Path == "/fast" {
			_, _ = io.WriteString(w, "{}")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		chunk := make([]byte, 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
	}))
	t.Cleanup(s.CloseClientConnections)
	t.Cleanup(s.Close)
	return s.URL
}

// eventually200 posts to /fast until it gets 200, for at most 10 s.
func eventually200(t *testing.T, v *vane) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("slot given back within %v", time.Since(start).Round(10*time.Millisecond)) }()
	client := &http.Client{Timeout: 2 * time.Second}
	require.Eventually(t, func() bool {
		resp, err := client.Post(v.url+"/fast", "application/json", strings.NewReader("{}"))
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "the endpoint's concurrency slots were never given back")
}

// shortBodies opens n h2c streams that declare a 100-byte body and send
// 2 bytes of it, closing their side when end is set, and returns the
// answers once every stream has ended.
func shortBodies(t *testing.T, addr string, n int, end bool) (map[uint32]*h2resp, []uint32) {
	t.Helper()
	h := dialH2(t, addr)
	got := map[uint32]*h2resp{}
	var ids []uint32
	for range n {
		id := h.headers(t, "POST", "/v1/x", false, "content-length", "100")
		require.NoError(t, h.fr.WriteData(id, end, []byte("{}")))
		ids = append(ids, id)
	}
	require.NoError(t, h.collect(5*time.Second, got, allEnded(got, ids)))
	return got, ids
}

// h2c streams cut while their answer is copied (client resets, the
// model's timeout mid-stream) give their concurrency slots back: they
// used to leak one each (ReverseProxy panics with ErrAbortHandler past
// the bookkeeping), and after endpoint_concurrency of them the endpoint
// answered 503 forever, on HTTP/1.1 too.
func TestCutH2CStreamsGiveTheirSlotsBack(t *testing.T) {
	url := endlessBackend(t)
	v := startVane(t, withModelKeys(hostileConfig(url, "raw", "400ms", ""), "    limits: {endpoint_concurrency: 2}\n"))

	h := dialH2(t, v.addr)
	got := map[uint32]*h2resp{}
	for round := range 2 { // two streams reset by the client, twice
		ids := []uint32{h.headers(t, "POST", "/stream", true), h.headers(t, "POST", "/stream", true)}
		require.NoError(t, h.collect(5*time.Second, got, func() bool {
			return got[ids[0]] != nil && got[ids[0]].data && got[ids[1]] != nil && got[ids[1]].data
		}), "round %d", round)
		for _, id := range ids {
			require.NoError(t, h.fr.WriteRSTStream(id, 0x8)) // CANCEL
		}
		eventually200(t, v)
	}
	// Two streams cut by the model's timeout while they flow.
	ids := []uint32{h.headers(t, "POST", "/stream", true), h.headers(t, "POST", "/stream", true)}
	require.NoError(t, h.collect(5*time.Second, got, allEnded(got, ids)))
	eventually200(t, v)
	require.Eventually(t, func() bool {
		return metricSum(t, v.admin, "vane_requests_total", `model="m"`, `code="499"`) == 4
	}, 5*time.Second, 20*time.Millisecond, "cut streams are counted as the client's (499)")
}

// Requests that are the client's fault never charge the endpoint: 30 of
// each kind used to open a healthy endpoint's breaker (503 "no routable
// version" for open_for). Each gets a 4xx (or is served) and the breaker
// stays closed.
func TestClientFaultsNeverOpenTheBreaker(t *testing.T) {
	const n = 30
	b := backend(t, "v1")
	v := startVane(t, hostileConfig(b.URL, "raw", "500ms", ""))
	check := func(t *testing.T) {
		t.Helper()
		assert.Zero(t, metricSum(t, v.admin, "vane_circuit_breaker_open"), "breaker opened")
		assert.Zero(t, metricSum(t, v.admin, "vane_upstream_errors_total"), "charged to the upstream")
		resp, body := post(t, v.url+"/ok", "{}", nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	}
	t.Run("absolute-form target of another scheme and host", func(t *testing.T) {
		for range n {
			resp, body := rawRoundTrip(t, v.addr, "POST https://elsewhere.example/v1/x HTTP/1.1\r\nHost: elsewhere.example\r\nContent-Length: 2\r\n\r\n{}")
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			assert.Contains(t, string(body), `"path":"/v1/x"`)
		}
		check(t)
	})
	t.Run("HTTP/1.0 without Host", func(t *testing.T) {
		for range n {
			resp, body := rawRoundTrip(t, v.addr, "POST /v1/x HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}")
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		}
		check(t)
	})
	t.Run("h2c body shorter than its content-length", func(t *testing.T) {
		got, ids := shortBodies(t, v.addr, n, true)
		for _, id := range ids {
			assert.True(t, got[id].reset || got[id].status == http.StatusBadRequest, "stream %d: %+v", id, got[id])
		}
		check(t)
	})
	t.Run("h2c streams left open past the timeout", func(t *testing.T) {
		got, ids := shortBodies(t, v.addr, n, false)
		for _, id := range ids {
			assert.Equal(t, http.StatusRequestTimeout, got[id].status, "stream %d %+v", id, got[id])
		}
		check(t)
	})
}

// A backend that refuses a large body (answers 413 and closes while it is
// being sent) is not charged for it: the client gets the backend's 413
// (or vane's, when the close destroyed the answer).
func TestRefusedBodiesAreTheClients(t *testing.T) {
	url := hostileBackend(t, func(c net.Conn, r *http.Request, _ *bufio.Reader) {
		_, _ = io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 15\r\nConnection: close\r\n\r\nbackend refused")
	})
	v := startVane(t, hostileConfig(url, "kserve-v1", "2s", ""))
	big := strings.Repeat("x", 4<<20)
	forwarded := 0
	for range 30 {
		resp, body := post(t, v.url+"/v1/models/m:predict", big, nil)
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)
		if body == "backend refused" {
			forwarded++
		}
	}
	t.Logf("the backend's own 413 forwarded %d times of 30", forwarded)
	assert.Zero(t, metricSum(t, v.admin, "vane_circuit_breaker_open"), "breaker opened")
	resp, body := post(t, v.url+"/v1/models/m:predict", "{}", nil)
	assert.NotEqual(t, http.StatusServiceUnavailable, resp.StatusCode, body)
}
