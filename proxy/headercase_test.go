package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// rawHTTP sends one HTTP/1.1 request written byte for byte, so header
// names reach vane in the case the test chose, and reads the answer.
func rawHTTP(t *testing.T, addr, request string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = io.WriteString(c, request)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	_, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp
}

// Field names are case-insensitive (RFC 9110 §5.1): the contract's
// headers, the sticky header and the hop-by-hop fields must work in any
// case, as clients such as Node.js and HTTP/2 gateways send them lowercase.
func TestHeaderNamesAnyCase(t *testing.T) {
	var (
		mu  sync.Mutex
		got []http.Header
	)
	mk := func(version string) *httptest.Server {
		be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				mu.Lock()
				got = append(got, r.Header.Clone())
				mu.Unlock()
			}
			w.Header().Set("X-Backend-Version", version)
			w.Header()["connection"] = []string{"x-resp-hop"}
			w.Header()["x-resp-hop"] = []string{"must not reach the client"}
			_, _ = io.WriteString(w, `{"predictions":[1]}`)
		}))
		t.Cleanup(be.Close)
		return be
	}
	b1, b2 := mk("v1"), mk("v2")
	v := startVane(t, twoVersions(b1.URL, b2.URL, 100, 0, "    routing:\n      sticky_header: X-User-Id\n"))
	addr := strings.TrimPrefix(v.url, "http://")
	body := `{"instances":[[1,2,3,4]]}`

	for _, name := range []string{"x-vane-version", "X-VANE-VERSION", "X-Vane-Version"} {
		resp := rawHTTP(t, addr, fmt.Sprintf("POST /v1/models/iris:predict HTTP/1.1\r\nHost: vane\r\n"+
			"%s: v2\r\nconnection: x-secret\r\nx-secret: hop\r\nkeep-alive: timeout=5\r\nx-request-id: rid-%s\r\n"+
			"content-length: %d\r\n\r\n%s", name, name, len(body), body))
		assert.Equal(t, http.StatusOK, resp.StatusCode, name)
		assert.Equal(t, "v2", resp.Header.Get("X-Backend-Version"), "override sent as %q", name)
		assert.Equal(t, "v2", resp.Header.Get("X-Vane-Version"), name)
		assert.Equal(t, "rid-"+name, resp.Header.Get("X-Request-Id"), "request id kept")
		assert.Empty(t, resp.Header.Get("X-Resp-Hop"), "field named by the answer's lowercase connection header")
	}
	mu.Lock()
	seen := got
	mu.Unlock()
	require.Len(t, seen, 3)
	for _, h := range seen {
		assert.Empty(t, h.Get("X-Secret"), "field named by a lowercase connection header was forwarded")
		assert.Empty(t, h.Get("Keep-Alive"), "lowercase keep-alive was forwarded")
		assert.Empty(t, h.Get("X-Vane-Version"), "the override header is vane's, not the backend's")
		assert.Len(t, h.Values("X-Request-Id"), 1, "one request id, not a second generated one")
	}

	// Sticky: the config names X-User-Id; clients send it in any case and
	// the same user must land on the same version whatever the case.
	v2 := startVane(t, twoVersions(b1.URL, b2.URL, 50, 50, "    routing:\n      sticky_header: X-User-Id\n"))
	addr2 := strings.TrimPrefix(v2.url, "http://")
	for u := range 40 {
		var seen []string
		for _, name := range []string{"x-user-id", "X-USER-ID", "X-User-Id", "x-user-id"} {
			resp := rawHTTP(t, addr2, fmt.Sprintf("POST /v1/models/iris:predict HTTP/1.1\r\nHost: vane\r\n"+
				"%s: user-%d\r\ncontent-length: %d\r\n\r\n%s", name, u, len(body), body))
			require.Equal(t, http.StatusOK, resp.StatusCode, "user-%d as %s", u, name)
			seen = append(seen, resp.Header.Get("X-Vane-Version"))
		}
		for _, s := range seen[1:] {
			require.Equal(t, seen[0], s, "user-%d changed version with the header's case: %v", u, seen)
		}
	}
}

// The sticky header's name, canonicalised once at config build, must find
// the field in a parsed request whatever the case on either side.
func TestStickyKeyMatchesParsedNames(t *testing.T) {
	for _, sent := range []string{"x-user-id", "X-USER-ID", "X-User-Id", "x-tenant_id", "a--b"} {
		for _, configured := range []string{strings.ToLower(sent), strings.ToUpper(sent)} {
			var req fasthttp.Request
			require.NoError(t, req.Read(bufio.NewReader(strings.NewReader(
				"GET / HTTP/1.1\r\nHost: h\r\n"+sent+": v\r\n\r\n"))))
			key := fasthttp.AppendNormalizedHeaderKey(nil, configured)
			assert.Equal(t, "v", string(req.Header.PeekCanonical(key)), "sent %q, configured %q", sent, configured)
		}
	}
}

// removeHopRequest on headers as fasthttp parses them: every hop-by-hop
// field and every field Connection names goes, however many there are;
// the rest stays.
func TestRemoveHopHeaders(t *testing.T) {
	raw := "POST /x HTTP/1.1\r\nHost: h\r\nconnection: keep-alive, x-a, X-B ,x-c,x-d, x-e, close, x-f\r\n" +
		"x-a: 1\r\nx-b: 2\r\nx-c: 3\r\nx-d: 4\r\nx-e: 5\r\nx-f: 6\r\nx-kept: 7\r\nkeep-alive: timeout=5\r\n" +
		"te: trailers\r\nupgrade: h2c\r\nproxy-authorization: Basic x\r\ncontent-length: 0\r\n\r\n"
	var req fasthttp.Request
	require.NoError(t, req.Read(bufio.NewReader(strings.NewReader(raw))))
	removeHopRequest(&req.Header)
	var left []string
	for k := range req.Header.All() {
		left = append(left, string(k))
	}
	assert.ElementsMatch(t, []string{"Host", "Content-Length", "X-Kept"}, left)
	assert.False(t, req.Header.ConnectionClose(), "the client's Connection: close is not the upstream's")
	var plain fasthttp.Request
	require.NoError(t, plain.Read(bufio.NewReader(strings.NewReader(
		"POST /x HTTP/1.1\r\nHost: h\r\nX-User-Id: u\r\nContent-Length: 0\r\n\r\n"))))
	assert.Zero(t, testing.AllocsPerRun(100, func() { removeHopRequest(&plain.Header) }), "removeHopRequest allocates")
	var h fasthttp.ResponseHeader
	h.Set("Content-Type", "application/json")
	h.Set("X-Model", "iris")
	h.Set("Connection", "keep-alive")
	assert.Zero(t, testing.AllocsPerRun(100, func() { removeHopResponse(&h) }), "removeHopResponse allocates")
}

func TestRequestIDs(t *testing.T) {
	g := newRequestIDs()
	a, b := string(g.appendNext(nil)), string(g.appendNext([]byte("x")))
	require.Len(t, a, 32)
	require.Len(t, b, 33)
	assert.Regexp(t, `^[0-9a-f]{32}$`, a)
	assert.Equal(t, a[:16], b[1:17], "one prefix per process")
	assert.Equal(t, "0000000000000001", a[16:])
	assert.Equal(t, "0000000000000002", b[17:])
	g.n.Store(0xfedcba9876543210 - 1)
	assert.Equal(t, "fedcba9876543210", string(g.appendNext(nil))[16:])
	assert.NotEqual(t, a[:16], string(newRequestIDs().appendNext(nil))[:16], "prefixes are random")
}
