package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// TestMetricsListener: metrics.listen serves /metrics, /healthz and
// /readyz without a token, even with guard_reads, and nothing else; the
// admin listener keeps guarding its reads.
func TestMetricsListener(t *testing.T) {
	be := backend(t, "v1")
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("tok"), 0o600))
	raw := fmt.Sprintf(`
listen: "127.0.0.1:0"
admin: {listen: "127.0.0.1:0", token_file: %q, guard_reads: true}
metrics: {listen: "127.0.0.1:0"}
shutdown: {drain_timeout: 2s}
models:
  - name: iris
    match: {path_prefix: /v1/models/iris}
    versions:
      - {name: v1, endpoints: [%q]}
`, tokenFile, be.URL)
	cfg, err := configs.Parse([]byte(raw))
	require.NoError(t, err)
	reg := NewRegistry()
	srv, err := New(cfg, []byte(raw), Options{Registerer: reg, Gatherer: reg, Logger: testLogger(t)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	metricsAddr, adminAddr := make(chan string, 1), make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- srv.ListenAndServe(ctx, RunOptions{
			MetricsReady: func(a net.Addr) { metricsAddr <- a.String() },
			Ready:        func(_, a net.Addr) { adminAddr <- a.String() },
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	var m, a string
	select {
	case m = <-metricsAddr:
		a = <-adminAddr
	case err := <-done:
		t.Fatalf("vane stopped: %v", err)
	}
	waitReady(t, "http://"+m)
	get := func(url string) int {
		resp, err := http.Get(url)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, get("http://"+m+"/metrics"), "no token needed to scrape")
	assert.Equal(t, http.StatusOK, get("http://"+m+"/healthz"))
	assert.Equal(t, http.StatusOK, get("http://"+m+"/readyz"))
	for _, path := range []string{"/status", "/drift", "/debug/pprof/heap", "/"} {
		assert.Equal(t, http.StatusNotFound, get("http://"+m+path), path)
	}
	resp, err := http.Post("http://"+m+"/reload", "text/plain", nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "no reload on the metrics listener")
	assert.Equal(t, http.StatusUnauthorized, get("http://"+a+"/metrics"), "the admin listener still guards reads")
}
