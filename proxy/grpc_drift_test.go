package proxy

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vaneproxy/vane/examples/toymodel/toy"
	"github.com/vaneproxy/vane/monitor/decode"
)

// grpcDriftConfig is a gRPC model of two toy versions, 80/20, monitored.
func grpcDriftConfig(v1, v2, monitor string) string {
	return fmt.Sprintf(`
models:
  - name: iris
    match:
      path_prefix: /inference.GRPCInferenceService/
    protocol: grpc
    timeout: 5s
    versions:
      - name: v1
        weight: 80
        endpoints: ["h2c://%s"]
      - name: v2
        weight: 20
        endpoints: ["h2c://%s"]
    monitor:
%s`, v1, v2, monitor)
}

// inferCall sends one iris row as a ModelInfer call.
func inferCall(ctx context.Context, t *testing.T, conn *grpc.ClientConn, row [4]float64) {
	t.Helper()
	m := toy.InferMessage{ModelName: "iris", Tensors: []toy.InferTensor{
		{Name: "input0", Datatype: "FP32", Shape: []int64{1, 4}, Values: row[:]}}}
	req, err := m.MarshalRequest()
	require.NoError(t, err)
	var out []byte
	require.NoError(t, conn.Invoke(ctx, decode.GRPCModelInfer, &req, &out, grpc.ForceCodec(toy.RawCodec{})))
}

// TestGRPCDriftThroughTheProxy is the drift monitor as a gRPC user meets
// it: a grpc-go client sends ModelInfer calls, one iris row each, through
// vane to two toy versions split 80/20; halfway one input column moves a
// lot. Every call is sampled over the h2c path and decoded from the
// protobuf messages, and the moved column alerts on v1 while the others
// stay quiet.
func TestGRPCDriftThroughTheProxy(t *testing.T) {
	v := startVane(t, grpcDriftConfig(startToyGRPC(t, "v1"), startToyGRPC(t, "v2"), `      window: 200
      reference:
        warmup: 400
      features: [a, b, c, d]
`))
	conn, err := grpc.NewClient(v.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	rng := rand.New(rand.NewPCG(3, 5))
	const calls = 2000
	for i := range calls {
		var row [4]float64
		for j := range row {
			row[j] = 5 + rng.NormFloat64()
		}
		if i >= calls/2 {
			row[0] += 3 // a: a large shift
		}
		inferCall(ctx, t, conn, row)
	}
	require.Eventually(t, func() bool { return sumMetric(metricsText(t, v.admin), "vane_monitor_samples_total") == calls },
		10*time.Second, 20*time.Millisecond, "every call is sampled")
	page := metricsText(t, v.admin)
	assert.Regexp(t, `vane_monitor_samples_total\{model="iris",version="v2"\} [1-9]`, page, "v2 takes its share")
	assert.Contains(t, page, `vane_monitor_decode_errors_total{model="iris",version="v1"} 0`)
	assert.Contains(t, page, `vane_monitor_decode_errors_total{model="iris",version="v2"} 0`)

	var v1 struct{ closed int }
	var a, c bool
	require.Eventually(t, func() bool {
		for _, vr := range driftReport(t, v.admin).Models[0].Versions {
			if vr.Version == "v1" {
				v1.closed = vr.WindowsClosed
				a, c = feature(t, vr, "a").Drifted, feature(t, vr, "c").Drifted
			}
		}
		return v1.closed >= 6
	}, 10*time.Second, 20*time.Millisecond)
	assert.True(t, a, "a moved by 3 sd and must alert")
	assert.False(t, c, "c did not move")
	assert.Contains(t, page, `vane_drift_detected{feature="a",model="iris",version="v1"} 1`)
}

// Bodies over max_body_bytes are proxied but not sampled, and the drop is
// counted, on the h2c path as on HTTP/1.1.
func TestGRPCSamplingDropsAreCounted(t *testing.T) {
	v := startVane(t, grpcDriftConfig(startToyGRPC(t, "v1"), startToyGRPC(t, "v2"), `      max_body_bytes: 10
`))
	conn, err := grpc.NewClient(v.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 20 {
		inferCall(ctx, t, conn, [4]float64{6.8, 2.8, 4.8, 1.4})
	}
	require.Eventually(t, func() bool {
		return assert.ObjectsAreEqual(true, regexp.MustCompile(`vane_monitor_samples_dropped_total\{model="iris",reason="body_too_large"\} 20\b`).MatchString(metricsText(t, v.admin)))
	}, 5*time.Second, 20*time.Millisecond)
}

// A call that fails with a gRPC status (HTTP 200, trailers only) is still
// sampled: its request features count, its empty answer gives no
// predictions, and nothing is a decode error.
func TestGRPCFailedCallsKeepTheirFeatures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	model := toy.New(toy.Options{})
	s := model.NewGRPCServer()
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	v := startVane(t, grpcDriftConfig(ln.Addr().String(), ln.Addr().String(), "      window: 10\n"))
	conn, err := grpc.NewClient(v.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	model.SetFailing(true)
	m := toy.InferMessage{ModelName: "iris", Tensors: []toy.InferTensor{
		{Name: "input0", Datatype: "FP32", Shape: []int64{2, 4}, Values: []float64{6.8, 2.8, 4.8, 1.4, 5.1, 3.5, 1.4, 0.2}}}}
	req, err := m.MarshalRequest()
	require.NoError(t, err)
	for range 5 {
		var out []byte
		err := conn.Invoke(ctx, decode.GRPCModelInfer, &req, &out, grpc.ForceCodec(toy.RawCodec{}))
		require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	}
	require.Eventually(t, func() bool { return sumMetric(metricsText(t, v.admin), "vane_monitor_rows_total") == 10 },
		5*time.Second, 20*time.Millisecond, "5 calls of 2 rows each")
	assert.Zero(t, sumMetric(metricsText(t, v.admin), "vane_monitor_decode_errors_total"))
}

// A JSON request that arrives over h2c is sampled like one over HTTP/1.1.
func TestH2CJSONIsSampled(t *testing.T) {
	be := httptest.NewServer(toy.New(toy.Options{}))
	defer be.Close()
	v := startVane(t, twoVersions(be.URL, be.URL, 1, 0, ""))
	for range 3 {
		resp, err := h2cClient().Post(v.url+"/v1/models/iris:predict", "application/json",
			strings.NewReader(`{"instances": [[6.8, 2.8, 4.8, 1.4], [5.1, 3.5, 1.4, 0.2]]}`))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, 2, resp.ProtoMajor)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	rows := regexp.MustCompile(`vane_monitor_rows_total\{model="iris",version="v1"\} 6\b`)
	require.Eventually(t, func() bool { return rows.MatchString(metricsText(t, v.admin)) }, 5*time.Second, 20*time.Millisecond)
}

// sumMetric sums the samples of a counter over all its label sets.
func sumMetric(page, name string) int {
	total := 0
	for _, m := range regexp.MustCompile(`(?m)^`+name+`\{[^}]*\} (\d+)$`).FindAllStringSubmatch(page, -1) {
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	return total
}
