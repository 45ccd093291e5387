package proxy

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vaneproxy/vane/examples/toymodel/toy"
	"github.com/vaneproxy/vane/monitor/decode"
)

// vane's own refusals reach a grpc-go client as gRPC statuses, not as
// JSON bodies the client cannot read: an unknown pinned version is
// INVALID_ARGUMENT, a method no model matches NOT_FOUND, a version whose
// endpoint is gone UNAVAILABLE. The metrics still count the failure by
// the HTTP status it maps to.
func TestVaneErrorsAreGRPCStatusesToGRPCClients(t *testing.T) {
	addr := startToyGRPC(t, "v1")
	// v2's server is stopped once vane has seen it healthy.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	v2 := toy.New(toy.Options{}).NewGRPCServer()
	go func() { _ = v2.Serve(ln) }()
	v := startVane(t, grpcDriftConfig(addr, ln.Addr().String(), "      sample_rate: 0\n"))
	v2.Stop()
	conn, err := grpc.NewClient(v.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()

	m := toy.InferMessage{ModelName: "iris", Tensors: []toy.InferTensor{
		{Name: "input0", Datatype: "FP32", Shape: []int64{1, 4}, Values: []float64{6.8, 2.8, 4.8, 1.4}}}}
	req, err := m.MarshalRequest()
	require.NoError(t, err)
	call := func(method, pin string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if pin != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "x-vane-version", pin)
		}
		var out []byte
		return conn.Invoke(ctx, method, &req, &out, grpc.ForceCodec(toy.RawCodec{}))
	}

	require.NoError(t, call(decode.GRPCModelInfer, "v1"), "the healthy version answers")

	err = call(decode.GRPCModelInfer, "v9")
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "version")

	err = call("/no.Such/Method", "")
	assert.Equal(t, codes.NotFound, status.Code(err), "%v", err)

	err = call(decode.GRPCModelInfer, "v2")
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	page := metricsText(t, v.admin)
	assert.Contains(t, page, `vane_requests_total{code="400",model="iris",version=""}`)
	assert.Regexp(t, `vane_requests_total\{code="5\d\d",model="iris",version="v2"\} 1`, page, grepLines(page, "vane_requests_total"))
}

func TestGRPCPercentEncode(t *testing.T) {
	assert.Equal(t, "no route", grpcPercentEncode("no route"))
	assert.Equal(t, "100%25 d%C3%A9j%C3%A0%0A", grpcPercentEncode("100% déjà\n"))
}

// grepLines is the lines of page that contain s, for failure messages.
func grepLines(page, s string) string {
	var out []string
	for _, l := range strings.Split(page, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A version whose server answers UNAVAILABLE (HTTP 200 on the wire) is
// judged by its grpc-status: its breaker opens and its calls stop, and
// vane_grpc_requests_total counts the codes.
func TestGRPCStatusDecidesTheBreaker(t *testing.T) {
	good := startToyGRPC(t, "v1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	bad := toy.New(toy.Options{})
	srv := bad.NewGRPCServer()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	v := startVane(t, `
models:
  - name: iris
    match:
      path_prefix: /inference.GRPCInferenceService/
    protocol: grpc
    timeout: 5s
    circuit_breaker: {failure_ratio: 0.5, min_requests: 5, window: 30s, open_for: 1m}
    retry: {attempts: 1}
    versions:
      - name: v1
        weight: 50
        endpoints: ["h2c://`+good+`"]
      - name: v2
        weight: 50
        endpoints: ["h2c://`+ln.Addr().String()+`"]
    monitor:
      sample_rate: 0
`)
	bad.SetFailing(true) // its health service says NOT_SERVING too, but probes run every 5 s
	conn, err := grpc.NewClient(v.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	pinned := func() error {
		_, err := grpcInfer(t, conn, "v2")
		return err
	}
	for range 5 {
		assert.Equal(t, codes.Unavailable, status.Code(pinned()))
	}
	// Five UNAVAILABLE answers of five opened v2's breaker: the next
	// call is refused by vane itself, without reaching the server.
	page := metricsText(t, v.admin)
	assert.Contains(t, page, `vane_circuit_breaker_open{endpoint="h2c://`+ln.Addr().String()+`",model="iris",version="v2"} 1`)
	assert.Contains(t, page, `vane_grpc_requests_total{grpc_code="14",model="iris",version="v2"} 5`)
	err = pinned()
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Regexp(t, `vane_requests_total\{code="503",model="iris",version="v2"\} 1`, metricsText(t, v.admin),
		"the sixth call was vane's own refusal")
}
