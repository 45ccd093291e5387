package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

func TestHTTPProbeStatus(t *testing.T) {
	tests := []struct {
		status int
		pass   bool
	}{
		{200, true},
		{204, true},
		{299, true},
		{301, false}, // redirects are not followed
		{404, false},
		{429, false},
		{500, false},
		{503, false},
	}
	b := newBackend(t, 200)
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			b.status.Store(int32(tt.status))
			p := newProber(httpTarget(b, "v1", fastHealth(1, 1)))
			defer p.close()
			err := p.probe(context.Background())
			if tt.pass {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrProbeStatus)
			}
		})
	}
}

func TestHTTPProbeRequest(t *testing.T) {
	var path, ua atomic.Value
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		ua.Store(r.UserAgent())
		w.Write([]byte(strings.Repeat("x", 1000)))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1") // must be ignored
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	tg := Target{Scheme: "http", Addr: strings.TrimPrefix(srv.URL, "http://"),
		Health: configs.Health{Path: "/v1/models/iris", Interval: configs.DefaultHealthInterval, Timeout: time.Second}}
	p := newProber(tg)
	defer p.close()
	for range 3 {
		require.NoError(t, p.probe(context.Background()))
	}
	assert.Equal(t, "/v1/models/iris", path.Load())
	assert.Equal(t, "vane-health", ua.Load())
	assert.Equal(t, int64(1), conns.Load(), "probes reuse one connection")
}

func TestH2CProbe(t *testing.T) {
	var proto atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(r.Proto)
		if r.URL.Path != "/ready" {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	tg := Target{Scheme: "h2c", Addr: strings.TrimPrefix(srv.URL, "http://"),
		Health: configs.Health{Path: "/ready", Interval: configs.DefaultHealthInterval, Timeout: time.Second}}
	p := newProber(tg)
	defer p.close()
	require.NoError(t, p.probe(context.Background()))
	assert.Equal(t, "HTTP/2.0", proto.Load(), "h2c endpoints are probed over HTTP/2 cleartext")
}

func TestHTTPProbeUnreachable(t *testing.T) {
	b := newBackend(t, 200)
	addr := b.addr()
	b.Close()
	p := newProber(Target{Scheme: "http", Addr: addr, Health: configs.Health{Path: "/", Interval: configs.DefaultHealthInterval, Timeout: configs.DefaultHealthTimeout}})
	defer p.close()
	assert.Error(t, p.probe(context.Background()))
}
