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
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is a backend that records the request lines it receives.
type recorder struct {
	*httptest.Server
	mu    sync.Mutex
	lines []string
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		// Everything but vane's health probes (kserve-v1's default path)
		// is recorded.
		if req.Method != http.MethodGet || req.URL.Path != "/v1/models/iris" {
			r.mu.Lock()
			r.lines = append(r.lines, req.Method+" "+req.URL.RequestURI())
			r.mu.Unlock()
		}
		fmt.Fprint(w, "{}")
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// rawExchange writes raw bytes on one connection and reads everything the
// proxy answers until it closes or goes quiet.
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte(raw))
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, _ := io.ReadAll(bufio.NewReader(c))
	return string(b)
}

func TestRequestSmugglingAttempts(t *testing.T) {
	be := newRecorder(t)
	v := startVane(t, strings.Replace(twoVersions(be.URL, be.URL, 1, 0, ""), "/v1/models/iris", "/", 1))
	smuggled := "GET /admin/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	cases := []struct{ name, raw string }{
		{"CL.TE", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE.CL", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1\r\nZ\r\n0\r\n\r\n" + smuggled},
		{"two Content-Length", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n" + smuggled},
		{"obfuscated TE", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 0\r\n\r\n" + smuggled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(be.seen())
			answer := rawExchange(t, v.addr, tc.raw)
			require.NotEmpty(t, answer, "vane must answer")
			for _, l := range be.seen()[before:] {
				assert.NotContains(t, l, "smuggled", "a request hidden in the body reached the backend")
			}
			// vane refuses the request and does not go on to serve the
			// hidden one on the same connection.
			assert.True(t, strings.HasPrefix(answer, "HTTP/1.1 400"), answer)
			assert.Equal(t, 1, strings.Count(answer, "HTTP/1.1 "), answer)
		})
	}
}

func TestOversizedRequestsGetClearAnswers(t *testing.T) {
	be := newRecorder(t)
	v := startVane(t, twoVersions(be.URL, be.URL, 1, 0, ""))
	t.Run("headers over the limit get 431", func(t *testing.T) {
		raw := "GET /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n"
		answer := rawExchange(t, v.addr, raw)
		assert.True(t, strings.HasPrefix(answer, "HTTP/1.1 431"), answer[:min(len(answer), 200)])
	})
	t.Run("body over the limit gets 413", func(t *testing.T) {
		raw := fmt.Sprintf("POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 65<<20)
		answer := rawExchange(t, v.addr, raw)
		assert.True(t, strings.HasPrefix(answer, "HTTP/1.1 413"), answer[:min(len(answer), 200)])
	})
	assert.Empty(t, be.seen(), "nothing oversized reached the backend")
}

func TestOnlyConfiguredEndpointsAreDialed(t *testing.T) {
	be := newRecorder(t)
	other := newRecorder(t) // an address vane must never be talked into
	v := startVane(t, strings.Replace(twoVersions(be.URL, be.URL, 1, 0, ""), "/v1/models/iris", "/", 1))
	otherHost := strings.TrimPrefix(other.URL, "http://")
	raws := []string{
		"GET http://" + otherHost + "/x HTTP/1.1\r\nHost: " + otherHost + "\r\nConnection: close\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: " + otherHost + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: x\r\nX-Forwarded-Host: " + otherHost + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	}
	before := len(be.seen())
	for _, raw := range raws {
		assert.Contains(t, rawExchange(t, v.addr, raw), "HTTP/1.1 200")
	}
	assert.Len(t, be.seen(), before+3, "the configured endpoint got all three")
	assert.Empty(t, other.seen(), "vane dialed an address that is not a configured endpoint")
}
