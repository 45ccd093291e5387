package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// healthService is a real gRPC service (the standard health protocol) that
// sets headers and trailers and streams, so the proxy's h2c path is tested
// with a real grpc-go client and server.
type healthService struct {
	healthpb.UnimplementedHealthServer
	name string
}

func (h *healthService) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-backend", h.name, "x-saw-request-id", first(md.Get("x-request-id"))))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "checked-"+req.GetService()))
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (h *healthService) Watch(req *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	for _, s := range []healthpb.HealthCheckResponse_ServingStatus{
		healthpb.HealthCheckResponse_NOT_SERVING, healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_SERVICE_UNKNOWN,
	} {
		if err := stream.Send(&healthpb.HealthCheckResponse{Status: s}); err != nil {
			return err
		}
	}
	stream.SetTrailer(metadata.Pairs("x-trailer", "watched"))
	return nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func startGRPC(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, &healthService{name: name})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func grpcConfig(v1, v2 string) string {
	return fmt.Sprintf(`
models:
  - name: health
    match:
      path_prefix: /grpc.health.v1.Health/
    protocol: grpc
    timeout: 5s
    versions:
      - name: v1
        weight: 1
        endpoints: ["h2c://%s"]
      - name: v2
        weight: 0
        endpoints: ["h2c://%s"]
`, v1, v2)
}

func TestGRPCThroughH2C(t *testing.T) {
	v := startVane(t, grpcConfig(startGRPC(t, "one"), startGRPC(t, "two")))
	conn, err := grpc.NewClient(v.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	t.Run("unary keeps headers and trailers", func(t *testing.T) {
		var header, trailer metadata.MD
		resp, err := client.Check(metadata.AppendToOutgoingContext(ctx, "x-request-id", "grpc-1"),
			&healthpb.HealthCheckRequest{Service: "iris"}, grpc.Header(&header), grpc.Trailer(&trailer))
		require.NoError(t, err)
		assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
		assert.Equal(t, []string{"one"}, header.Get("x-backend"))
		assert.Equal(t, []string{"grpc-1"}, header.Get("x-saw-request-id"))
		assert.Equal(t, []string{"v1"}, header.Get("x-vane-version"))
		assert.Equal(t, []string{"checked-iris"}, trailer.Get("x-trailer"))
	})
	t.Run("override pins a version", func(t *testing.T) {
		var header metadata.MD
		_, err := client.Check(metadata.AppendToOutgoingContext(ctx, "x-vane-version", "v2"),
			&healthpb.HealthCheckRequest{}, grpc.Header(&header))
		require.NoError(t, err)
		assert.Equal(t, []string{"two"}, header.Get("x-backend"))
	})
	t.Run("server stream", func(t *testing.T) {
		stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		var got []healthpb.HealthCheckResponse_ServingStatus
		for {
			m, err := stream.Recv()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			got = append(got, m.GetStatus())
		}
		assert.Len(t, got, 3)
		assert.Equal(t, []string{"watched"}, stream.Trailer().Get("x-trailer"))
	})
}

// h2cClient speaks HTTP/2 with prior knowledge, as gRPC clients do.
func h2cClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func TestH2CClientToHTTP1Backend(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	v := startVane(t, twoVersions(b1.URL, b2.URL, 1, 0, ""))
	resp, err := h2cClient().Post(v.url+"/v1/models/iris:predict", "application/json", strings.NewReader(`{"instances":[]}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, 2, resp.ProtoMajor)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "v1", resp.Header.Get("X-Vane-Version"))
	assert.Contains(t, string(body), `"body_len":16`)

	resp, err = h2cClient().Post(v.url+"/v1/models/iris:predict", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.NotEmpty(t, resp.Header.Get("X-Request-Id"))

	req, _ := http.NewRequest(http.MethodGet, v.url+"/v1/models/iris", nil)
	req.Header.Set("X-Vane-Version", "nope")
	resp, err = h2cClient().Do(req)
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(body), `"error"`)
}

func TestHTTP1ClientToH2CBackend(t *testing.T) {
	// An h2c backend built from net/http's own HTTP/2 server.
	h2s := &http2.Server{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go h2s.ServeConn(c, &http2.ServeConnOpts{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				w.Header().Set("X-Proto", r.Proto)
				fmt.Fprintf(w, "got %d bytes", len(b))
			})})
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	v := startVane(t, twoVersions("h2c://"+ln.Addr().String(), "h2c://"+ln.Addr().String(), 1, 0, ""))
	resp, body := post(t, v.url+"/v1/models/iris:predict", "hello", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "HTTP/2.0", resp.Header.Get("X-Proto"))
	assert.Equal(t, "got 5 bytes", body)
	assert.Equal(t, "v1", resp.Header.Get("X-Vane-Version"))
}

// An HTTP/2 client's request to http:// endpoints is retried like an
// HTTP/1.1 one: with v2's server gone (and its probes a minute apart),
// every request still gets v1's answer, and the failed attempts are
// counted as v2's retries.
func TestH2CClientToHTTP1BackendIsRetried(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	v := startVane(t, twoVersions(b1.URL, b2.URL, 1, 1,
		"    health: {interval: 1m}\n    retry: {attempts: 3, budget_ratio: 1.0}\n"))
	waitAllRoutable(t, v.srv)
	b2.Close()
	c := h2cClient()
	for i := range 40 {
		resp, err := c.Post(v.url+"/v1/models/iris:predict", "application/json", strings.NewReader(`{"instances":[]}`))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "request %d: %s", i, body)
		assert.Equal(t, "v1", resp.Header.Get("X-Vane-Version"))
		assert.Equal(t, 2, resp.ProtoMajor)
	}
	retries := metricSum(t, v.admin, "vane_retries_total", `version="v2"`)
	t.Logf("v2: %v requests retried", retries)
	assert.GreaterOrEqual(t, retries, 1.0)
}

// A model matches the same requests on both transports: HTTP/2 paths are
// normalised for routing as fasthttp normalises HTTP/1.1 ones
// (percent-encoding, dot segments, repeated slashes), and either way the
// backend gets the path as the client sent it.
func TestBothTransportsRouteTheSamePaths(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	cfg := twoVersions(b1.URL, b2.URL, 1, 0, "")
	cfg = strings.Replace(cfg, "models:\n", `models:
  - name: other
    match:
      path_prefix: /
    protocol: raw
    versions:
      - name: o1
        endpoints: [`+strconv.Quote(b2.URL)+`]
`, 1)
	v := startVane(t, cfg)
	for _, path := range []string{"/v1/models/iris:predict", "/v1/models/%69ris:predict", "/x/../v1/models/iris:predict",
		"/v1//models/iris:predict", "/v1/models/ir%2Fis", "/v1/models/other"} {
		h1, err := httpClient.Post(v.url+path, "application/json", strings.NewReader(`{}`))
		require.NoError(t, err)
		_ = h1.Body.Close()
		h2, err := h2cClient().Post(v.url+path, "application/json", strings.NewReader(`{}`))
		require.NoError(t, err)
		_ = h2.Body.Close()
		assert.Equal(t, h1.Header.Get("X-Vane-Version"), h2.Header.Get("X-Vane-Version"), "path %s", path)
		assert.Equal(t, h1.StatusCode, h2.StatusCode, "path %s", path)
	}
}
