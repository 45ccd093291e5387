package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/vaneproxy/vane/configs"
)

// Clients that do not read their answer (HTTP/1.1) or hold a zero window
// (h2c) give their concurrency slot back at the model's timeout: they
// used to keep it for as long as they kept the connection open.
func TestNonReadingClientsGiveTheirSlotsBack(t *testing.T) {
	url := endlessBackend(t)
	cfg := withModelKeys(hostileConfig(url, "raw", "500ms", ""), "    limits: {endpoint_concurrency: 1}\n")
	t.Run("http/1.1", func(t *testing.T) {
		v := startVane(t, cfg)
		c, err := net.Dial("tcp", v.addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, "POST /stream HTTP/1.1\r\nHost: vane.test\r\nContent-Length: 2\r\n\r\n{}")
		require.NoError(t, err)
		// Never read: the answer fills the socket buffers and blocks.
		eventually200(t, v)
	})
	t.Run("h2c zero window", func(t *testing.T) {
		v := startVane(t, cfg)
		h := dialH2(t, v.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		h.headers(t, "POST", "/stream", true)
		got := map[uint32]*h2resp{}
		_ = h.collect(300*time.Millisecond, got, func() bool { return false }) // answers SETTINGS
		eventually200(t, v)
	})
}

// echoHeadersH2C is echoHeaders over h2c (prior knowledge): its h2c://
// URL.
func echoHeadersH2C(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = json.NewEncoder(w).Encode(r.Header)
	}), &http2.Server{}))
	t.Cleanup(s.Close)
	return "h2c://" + strings.TrimPrefix(s.URL, "http://")
}

// echoHeaders is a backend answering with the request's headers as JSON.
func echoHeaders(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// One forwarded-header policy for both transports: vane sets
// X-Forwarded-Proto and -Host and appends to X-Forwarded-For; a client's
// values are kept only from trusted_proxies; Forwarded only from them;
// underscore spellings (X_Forwarded_Proto) never reach the backend.
func TestForwardedHeadersPolicy(t *testing.T) {
	url := echoHeaders(t)
	spoof := [][2]string{{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Host", "evil.example"},
		{"X-Forwarded-For", "203.0.113.9"}, {"X_Forwarded_Proto", "https"}, {"X_Forwarded_For", "198.51.100.1"},
		{"Forwarded", "for=203.0.113.9;proto=https"}}
	h1 := func(t *testing.T, v *vane) http.Header {
		var b strings.Builder
		b.WriteString("POST /echo HTTP/1.1\r\nHost: vane.test\r\nContent-Length: 2\r\n")
		for _, f := range spoof {
			b.WriteString(f[0] + ": " + f[1] + "\r\n")
		}
		b.WriteString("\r\n{}")
		resp, body := rawRoundTrip(t, v.addr, b.String())
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		var h http.Header
		require.NoError(t, json.Unmarshal(body, &h))
		return h
	}
	h2 := func(t *testing.T, v *vane) http.Header {
		h := dialH2(t, v.addr)
		var fields []string
		for _, f := range spoof {
			fields = append(fields, strings.ToLower(f[0]), f[1])
		}
		id := h.headers(t, "POST", "/echo", true, fields...)
		got := map[uint32]*h2resp{}
		require.NoError(t, h.collect(5*time.Second, got, allEnded(got, []uint32{id})))
		require.Equal(t, http.StatusOK, got[id].status, string(got[id].body))
		var hd http.Header
		require.NoError(t, json.Unmarshal(got[id].body, &hd))
		return hd
	}
	noUnderscores := func(t *testing.T, h http.Header) {
		for k := range h {
			assert.NotContains(t, k, "_", "an underscore spelling reached the backend")
		}
	}
	// asUntrusted checks what an untrusted client's forged fields became.
	asUntrusted := func(t *testing.T, h http.Header) {
		assert.Equal(t, "http", h.Get("X-Forwarded-Proto"))
		assert.Equal(t, "vane.test", h.Get("X-Forwarded-Host"))
		assert.Equal(t, "203.0.113.9, 127.0.0.1", h.Get("X-Forwarded-For"))
		assert.Empty(t, h.Get("Forwarded"))
		noUnderscores(t, h)
	}
	t.Run("to an h2c backend", func(t *testing.T) {
		url := echoHeadersH2C(t)
		untrusted := startVane(t, hostileConfig(url, "raw", "2s", ""))
		for name, send := range map[string]func(*testing.T, *vane) http.Header{"http/1.1": h1, "h2c": h2} {
			t.Run(name, func(t *testing.T) {
				asUntrusted(t, send(t, untrusted))
			})
		}
	})
	untrusted := startVane(t, hostileConfig(url, "raw", "2s", ""))
	trusted := startVane(t, hostileConfig(url, "raw", "2s", "trusted_proxies: [\"127.0.0.0/8\"]\n"))
	for name, send := range map[string]func(*testing.T, *vane) http.Header{"http/1.1": h1, "h2c": h2} {
		t.Run(name+" untrusted", func(t *testing.T) { asUntrusted(t, send(t, untrusted)) })
		t.Run(name+" trusted", func(t *testing.T) {
			h := send(t, trusted)
			assert.Equal(t, "https", h.Get("X-Forwarded-Proto"))
			assert.Equal(t, "evil.example", h.Get("X-Forwarded-Host"))
			assert.Equal(t, "203.0.113.9, 127.0.0.1", h.Get("X-Forwarded-For"))
			assert.Equal(t, "for=203.0.113.9;proto=https", h.Get("Forwarded"))
			noUnderscores(t, h)
		})
	}
}

// No upstream byte and no internal address reaches a client: a backend
// that closes mid-headers (a cookie and a token in what it sent) gets its
// client a fixed message and the request id.
func TestErrorBodiesCarryNoUpstreamBytes(t *testing.T) {
	url := hostileBackend(t, func(c net.Conn, r *http.Request, _ *bufio.Reader) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nSet-Cookie: session=s3cr3t\r\nX-Internal-Token: t0k3n")
	})
	v := startVane(t, hostileConfig(url, "kserve-v1", "2s", ""))
	clean := func(t *testing.T, status int, rid string, body []byte) {
		t.Helper()
		assert.Equal(t, http.StatusBadGateway, status, string(body))
		for _, leak := range []string{"s3cr3t", "t0k3n", "Set-Cookie", "127.0.0.1", "tcp"} {
			assert.NotContains(t, string(body), leak)
		}
		assert.Equal(t, "upstream failed", errorField(string(body)))
		assert.Contains(t, string(body), `"request_id":"`+rid+`"`)
	}
	resp, body := post(t, v.url+"/v1/models/m:predict", "{}", map[string]string{"X-Request-Id": "rid-h1"})
	clean(t, resp.StatusCode, "rid-h1", []byte(body))

	h := dialH2(t, v.addr)
	id := h.headers(t, "POST", "/v1/models/m:predict", true, "x-request-id", "rid-h2")
	got := map[uint32]*h2resp{}
	require.NoError(t, h.collect(5*time.Second, got, allEnded(got, []uint32{id})))
	clean(t, got[id].status, "rid-h2", got[id].body)
}

// An HTTP/1.0 client never gets Transfer-Encoding: chunked (it cannot
// parse it; Go's client hung): a streamed answer reaches it sized.
func TestHTTP10ClientsGetSizedAnswers(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for i := range 3 {
			fmt.Fprintf(w, "part %d\n", i)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(s.Close)
	for _, proto := range []string{"raw", "openai"} {
		v := startVane(t, hostileConfig(s.URL, proto, "2s", ""))
		for _, conn := range []string{"keep-alive", "close"} {
			resp, body := rawRoundTrip(t, v.addr, "POST /x HTTP/1.0\r\nConnection: "+conn+"\r\nContent-Length: 2\r\n\r\n{}")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Empty(t, resp.TransferEncoding, proto)
			assert.Equal(t, int64(len(body)), resp.ContentLength, proto)
			assert.Equal(t, "part 0\npart 1\npart 2\n", string(body))
		}
	}
}

// Sampling hashes the request id with a per-process secret: a client
// choosing its X-Request-Id cannot choose, or dodge, sampling. The same id
// gets the same answer within a process; two processes sample different
// ids; the rate holds.
func TestSamplingIsKeyedPerProcess(t *testing.T) {
	yaml := strings.Replace(hostileConfig("http://127.0.0.1:9", "raw", "1s", ""), "    retry:", "    monitor: {sample_rate: 0.5}\n    retry:", 1)
	newServer := func() *Server {
		cfg, err := configs.Parse([]byte(yaml))
		require.NoError(t, err)
		reg := NewRegistry()
		s, err := New(cfg, []byte(yaml), Options{Registerer: reg, Gatherer: reg, Logger: testLogger(t)})
		require.NoError(t, err)
		return s
	}
	a, b := newServer(), newServer()
	mod := a.snap.Load().table.Models()[0]
	const n = 2000
	inA, same := 0, 0
	for i := range n {
		id := []byte(fmt.Sprintf("aaaa-%d", i))
		sa := a.sampled(mod, id)
		require.Equal(t, sa, a.sampled(mod, id), "one id, one answer")
		if sa {
			inA++
		}
		if sa == b.sampled(mod, id) {
			same++
		}
	}
	assert.InDelta(t, n/2, inA, n/10, "the rate holds")
	assert.InDelta(t, n/2, same, n/10, "another process's choice is independent")
}

// A client that cancels is counted as the client's (499), never as an
// upstream 502 or an upstream error.
func TestClientCancelsAre499(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		}
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(s.Close)
	v := startVane(t, hostileConfig(s.URL, "raw", "5s", ""))
	h := dialH2(t, v.addr)
	got := map[uint32]*h2resp{}
	for range 3 {
		id := h.headers(t, "POST", "/slow", true)
		_ = h.collect(100*time.Millisecond, got, func() bool { return false })
		require.NoError(t, h.fr.WriteRSTStream(id, 0x8))
	}
	require.Eventually(t, func() bool {
		return metricSum(t, v.admin, "vane_requests_total", `code="499"`) == 3
	}, 5*time.Second, 20*time.Millisecond)
	assert.Zero(t, metricSum(t, v.admin, "vane_requests_total", `code="502"`))
	assert.Zero(t, metricSum(t, v.admin, "vane_upstream_errors_total"))
}

// The series of a model that leaves the config leave /metrics with it.
func TestRemovedModelsSeriesAreDeleted(t *testing.T) {
	b := backend(t, "v1")
	two := twoVersions(b.URL, b.URL, 1, 1, "") + fmt.Sprintf(`  - name: gone
    match: {path_prefix: /gone}
    versions:
      - name: old
        endpoints: [%q]
`, b.URL)
	v := startVane(t, two)
	resp, _ := post(t, v.url+"/gone", "{}", map[string]string{"X-Vane-Version": "old"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = post(t, v.url+"/gone", "{}", map[string]string{"X-Vane-Version": "nope"})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Positive(t, metricSum(t, v.admin, "vane_requests_total", `model="gone"`))
	_, err := v.srv.ReloadBytes([]byte(twoVersions(b.URL, b.URL, 1, 1, "")))
	require.NoError(t, err)
	assert.NotContains(t, metricsText(t, v.admin), `model="gone"`)
}

// h2c connections announce a cap on concurrent streams, and one that
// resets far more streams than it completes (rapid reset) is closed;
// vane keeps serving others.
func TestH2CStreamLimits(t *testing.T) {
	b := backend(t, "v1")
	v := startVane(t, hostileConfig(b.URL, "raw", "2s", ""))
	h := dialH2(t, v.addr)
	got := map[uint32]*h2resp{}
	_ = h.collect(300*time.Millisecond, got, func() bool { return len(h.settings) > 0 })
	assert.Equal(t, uint32(h2MaxStreams), h.settings[http2.SettingMaxConcurrentStreams])

	var err error
	// 300 reset streams: thrice the threshold, yet few enough that x/net's own
	// guard (too many handlers queued) does not close the connection.
	i := 0
	defer func() { t.Logf("%d reset streams written before the close was seen", i) }()
	for ; i < 300 && err == nil; i++ {
		var id uint32
		if id, err = h.tryHeaders("POST", "/x", true); err == nil {
			err = h.fr.WriteRSTStream(id, 0x8)
		}
	}
	if err == nil { // the writes may all fit in the buffers: the reads tell
		err = h.collect(5*time.Second, got, func() bool { return false })
		assert.ErrorIs(t, err, errConnClosed, "a rapid-reset connection must be closed")
	} // else a write found the connection reset: closed too
	resp, body := post(t, v.url+"/ok", "{}", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
}

// A keep-alive connection's next request is not hurt by the write deadline
// of the one before (which bounded that answer): an Expect: 100-continue,
// answered before the handler runs, still goes out.
func TestWriteDeadlineDoesNotOutliveItsRequest(t *testing.T) {
	b := backend(t, "v1")
	v := startVane(t, hostileConfig(b.URL, "raw", "100ms", ""))
	c, err := net.Dial("tcp", v.addr)
	require.NoError(t, err)
	defer c.Close()
	br := bufio.NewReader(c)
	send := func(expect bool) {
		t.Helper()
		hdr := "POST /x HTTP/1.1\r\nHost: vane.test\r\nContent-Length: 2\r\n"
		if expect {
			hdr += "Expect: 100-continue\r\n"
		}
		_, err := io.WriteString(c, hdr+"\r\n")
		require.NoError(t, err)
		if expect {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := br.ReadString('\n')
			require.NoError(t, err, "no 100 Continue")
			require.Contains(t, line, "100")
			_, _ = br.ReadString('\n')
		}
		_, err = io.WriteString(c, "{}")
		require.NoError(t, err)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	send(false)
	// Past the first request's write deadline, slack (serverSlack) included.
	time.Sleep(100*time.Millisecond + writeGrace + time.Duration(serverSlack.Load()) + 300*time.Millisecond)
	send(true)
}

// Streams of many h2c connections share upstream connections: 300
// concurrent streams to a slow HTTP/1.1 backend open at most
// maxUpstreamConnsH2 connections to it (each stream used to dial its own).
func TestH2CStreamsShareUpstreamConnections(t *testing.T) {
	var conns connCounter
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost {
			time.Sleep(300 * time.Millisecond)
		}
		_, _ = io.WriteString(w, "{}")
	}))
	s.Config.ConnState = conns.hook
	s.Start()
	t.Cleanup(s.Close)
	v := startVane(t, hostileConfig(s.URL, "raw", "10s", ""))
	var hs []*h2conn
	ids := map[*h2conn][]uint32{}
	for range 3 {
		h := dialH2(t, v.addr)
		hs = append(hs, h)
		for range h2MaxStreams {
			ids[h] = append(ids[h], h.headers(t, "POST", "/x", true))
		}
	}
	ok := 0
	for _, h := range hs {
		got := map[uint32]*h2resp{}
		require.NoError(t, h.collect(10*time.Second, got, allEnded(got, ids[h])))
		for _, id := range ids[h] {
			if got[id].status == http.StatusOK {
				ok++
			}
		}
	}
	assert.Equal(t, 3*h2MaxStreams, ok)
	t.Logf("%d streams, %d upstream connections at most at once", ok, conns.peak.Load())
	assert.LessOrEqual(t, conns.peak.Load(), int64(maxUpstreamConnsH2+2), "2 for the probes")
}
