package proxy

import (
	"context"
	"fmt"
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
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/vaneproxy/vane/examples/toymodel/toy"
	"github.com/vaneproxy/vane/monitor/decode"
)

// grpcRetryConfig is a gRPC model of two versions, 80/20, that retries.
func grpcRetryConfig(v1, v2 string) string {
	return fmt.Sprintf(`
models:
  - name: iris
    match:
      path_prefix: /inference.GRPCInferenceService/
    protocol: grpc
    timeout: 5s
    circuit_breaker: {failure_ratio: 0.5, min_requests: 5, window: 30s, open_for: 1m}
    retry: {attempts: 3, budget_ratio: 1.0}
    versions:
      - name: v1
        weight: 80
        endpoints: ["h2c://%s"]
      - name: v2
        weight: 20
        endpoints: ["h2c://%s"]
    monitor:
      sample_rate: 0
`, v1, v2)
}

// grpcInfer makes one ModelInfer call through conn, pinned to a version
// when pin is set, and returns the version that answered.
func grpcInfer(t *testing.T, conn *grpc.ClientConn, pin string) (string, error) {
	t.Helper()
	m := toy.InferMessage{ModelName: "iris", Tensors: []toy.InferTensor{
		{Name: "input0", Datatype: "FP32", Shape: []int64{1, 4}, Values: []float64{6.8, 2.8, 4.8, 1.4}}}}
	req, err := m.MarshalRequest()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if pin != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-vane-version", pin)
	}
	var hdr metadata.MD
	var out []byte
	err = conn.Invoke(ctx, decode.GRPCModelInfer, &req, &out, grpc.ForceCodec(toy.RawCodec{}), grpc.Header(&hdr))
	return first(hdr.Get("x-vane-version")), err
}

// A version whose server answers UNAVAILABLE loses its traffic: each of
// its calls is retried on the other version within the budget (the
// client sees no error), and its breaker opens, after which it is not
// even tried.
func TestGRPCUnavailableIsRetriedElsewhere(t *testing.T) {
	good := startToyGRPC(t, "v1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	bad := toy.New(toy.Options{Version: "v2"})
	srv := bad.NewGRPCServer()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	v := startVane(t, grpcRetryConfig(good, ln.Addr().String()))
	bad.SetFailing(true)
	conn, err := grpc.NewClient(v.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()

	const n = 100
	for i := range n {
		ver, err := grpcInfer(t, conn, "")
		require.NoError(t, err, "call %d", i)
		assert.Equal(t, "v1", ver, "call %d answered by", i)
	}
	page := metricsText(t, v.admin)
	retries := metricSum(t, v.admin, "vane_retries_total", `version="v2"`)
	unavailable := metricSum(t, v.admin, "vane_grpc_requests_total", `version="v2"`)
	t.Logf("v2: %v retries, %v answers of its own", retries, unavailable)
	assert.GreaterOrEqual(t, retries, 5.0, grepLines(page, "vane_retries_total"))
	assert.Zero(t, unavailable, "no v2 answer reached a client: %s", grepLines(page, "vane_grpc_requests_total"))
	assert.Contains(t, page, `vane_circuit_breaker_open{endpoint="h2c://`+ln.Addr().String()+`",model="iris",version="v2"} 1`)
	assert.Contains(t, page, fmt.Sprintf(`vane_grpc_requests_total{grpc_code="0",model="iris",version="v1"} %d`, n))
	assert.Less(t, retries, float64(n)/2, "once open, the breaker keeps v2 from being tried at all")

	// A pinned call is not moved: it gets v2's own failure.
	_, err = grpcInfer(t, conn, "v2")
	require.Error(t, err)
}

// A version whose endpoint refuses connections loses no call either: the
// connect failure happens before any byte of an answer, so it is retried.
func TestGRPCConnectFailureIsRetried(t *testing.T) {
	good := startToyGRPC(t, "v1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := toy.New(toy.Options{Version: "v2"}).NewGRPCServer()
	go func() { _ = srv.Serve(ln) }()
	// Probes every minute: v2 stays routable after its server is gone,
	// and only the retries keep its calls from failing.
	v := startVane(t, strings.Replace(grpcRetryConfig(good, ln.Addr().String()),
		"    retry:", "    health: {interval: 1m}\n    retry:", 1))
	srv.Stop() // closes the listener: connections are refused from now on
	conn, err := grpc.NewClient(v.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	for i := range 50 {
		ver, err := grpcInfer(t, conn, "")
		require.NoError(t, err, "call %d", i)
		assert.Equal(t, "v1", ver)
	}
	retries := metricSum(t, v.admin, "vane_retries_total", `version="v2"`)
	t.Logf("v2: %v calls retried", retries)
	assert.GreaterOrEqual(t, retries, 1.0, "v2 was tried and its calls retried")
}

// A client's grpc-timeout is the call's deadline when it is sooner than
// the model's: a backend that never answers gets the call cut, and the
// client gets DEADLINE_EXCEEDED from vane (counted as 504), long before
// the model's minute.
func TestGRPCTimeoutIsTheDeadline(t *testing.T) {
	s := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		<-r.Context().Done() // never answers a call
	}), &http2.Server{}))
	t.Cleanup(s.Close)
	v := startVane(t, hostileConfig("h2c://"+strings.TrimPrefix(s.URL, "http://"), "raw", "1m", ""))
	h := dialH2(t, v.addr)
	id := h.headers(t, "POST", "/pkg.Svc/Call", true, "content-type", "application/grpc", "te", "trailers",
		"grpc-timeout", "100m")
	got := map[uint32]*h2resp{}
	require.NoError(t, h.collect(20*time.Second, got, allEnded(got, []uint32{id})))
	assert.Equal(t, http.StatusOK, got[id].status)
	assert.Equal(t, "4", got[id].header["grpc-status"], "DEADLINE_EXCEEDED: %+v", got[id])
	assert.Equal(t, 1.0, metricSum(t, v.admin, "vane_requests_total", `code="504"`))
}
