package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/examples/toymodel/toy"
)

// vane is a running proxy under test.
type vane struct {
	srv   *Server
	reg   *prometheus.Registry
	url   string // data plane base URL
	admin string // admin base URL
	addr  string
	stop  func() error
}

// startVane serves the config text on loopback until the test ends, and
// waits until every version of every model is routable (its probes
// passed), so that overrides of any version work at once.
func startVane(t *testing.T, yaml string) *vane {
	t.Helper()
	v := startVaneUnready(t, yaml)
	waitReady(t, v.admin)
	waitAllRoutable(t, v.srv)
	return v
}

// startVaneUnready starts vane without waiting for any probe: for configs
// whose backends never pass one, and for benchmarks.
func startVaneUnready(t testing.TB, yaml string) *vane {
	t.Helper()
	cfg, err := configs.Parse([]byte(yaml))
	require.NoError(t, err, "test config must be valid")
	reg := NewRegistry()
	srv, err := New(cfg, []byte(yaml), Options{Registerer: reg, Gatherer: reg, Logger: testLogger(t)})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	adm := httptest.NewServer(srv.AdminHandler())
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		adm.Close()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return &vane{srv: srv, reg: reg, url: "http://" + ln.Addr().String(), admin: adm.URL, addr: ln.Addr().String(), stop: stop}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// backend is an httptest server that names its version in every answer
// and echoes what it received.
func backend(t *testing.T, version string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend-Version", version)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"version":%q,"path":%q,"body_len":%d}`, version, r.URL.RequestURI(), len(body))
	}))
	t.Cleanup(s.Close)
	return s
}

// twoVersions is a config of model iris with v1 and v2 at the given weights.
func twoVersions(v1URL, v2URL string, w1, w2 float64, extra string) string {
	return fmt.Sprintf(`
listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:1"
shutdown:
  drain_timeout: 5s
models:
  - name: iris
    match:
      path_prefix: /v1/models/iris
    protocol: kserve-v1
    timeout: 2s
%s    versions:
      - name: v1
        weight: %g
        endpoints: [%q]
      - name: v2
        weight: %g
        endpoints: [%q]
`, extra, w1, v1URL, w2, v2URL)
}

var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func post(t *testing.T, url, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

// serveLoopback serves srv on a fresh loopback port until the test ends,
// then waits for Serve to return. It returns the port's address.
func serveLoopback(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// toyIris serves the toy iris model as version until the test ends and
// returns its URL.
func toyIris(t *testing.T, version string) string {
	t.Helper()
	s := httptest.NewServer(toy.New(toy.Options{Name: "iris", Version: version}))
	t.Cleanup(s.Close)
	return s.URL
}
