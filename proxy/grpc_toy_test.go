package proxy

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/vaneproxy/vane/examples/toymodel/toy"
	"github.com/vaneproxy/vane/monitor/decode"
)

// startToyGRPC serves a toy model version's gRPC side on loopback.
func startToyGRPC(t *testing.T, version string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := toy.New(toy.Options{Version: version}).NewGRPCServer()
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// A real grpc-go client calls the toy model's ModelInfer through vane's
// h2c path: both versions answer by weight or pin, and what travels is
// what the monitor's gRPC decoder reads.
func TestGRPCModelInferThroughVane(t *testing.T) {
	v := startVane(t, fmt.Sprintf(`
models:
  - name: iris
    match:
      path_prefix: /inference.GRPCInferenceService/
    protocol: grpc
    timeout: 5s
    versions:
      - name: v1
        weight: 1
        endpoints: ["h2c://%s"]
      - name: v2
        weight: 0
        endpoints: ["h2c://%s"]
`, startToyGRPC(t, "v1"), startToyGRPC(t, "v2")))
	conn, err := grpc.NewClient(v.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	reqMsg := toy.InferMessage{ModelName: "iris", ID: "1", Tensors: []toy.InferTensor{
		{Name: "input0", Datatype: "FP32", Shape: []int64{2, 4}, Values: []float64{6.8, 2.8, 4.8, 1.4, 5.1, 3.5, 1.4, 0.2}}}}
	req, err := reqMsg.MarshalRequest()
	require.NoError(t, err)
	for _, tt := range []struct {
		pin, want string
		outputs   int
		classes   []float64
		predName  string // a single output is "prediction", several are named
	}{
		{"", "v1", 1, []float64{1, 0}, "prediction"},
		{"v2", "v2", 2, []float64{2, 0}, "output0"},
	} {
		t.Run("version "+tt.want, func(t *testing.T) {
			cctx := ctx
			if tt.pin != "" {
				cctx = metadata.AppendToOutgoingContext(ctx, "x-vane-version", tt.pin)
			}
			var out []byte
			var header metadata.MD
			err := conn.Invoke(cctx, decode.GRPCModelInfer, &req, &out, grpc.ForceCodec(toy.RawCodec{}), grpc.Header(&header))
			require.NoError(t, err)
			assert.Equal(t, []string{tt.want}, header.Get("x-vane-version"))
			resp, err := toy.ParseInferResponse(out)
			require.NoError(t, err)
			require.Len(t, resp.Tensors, tt.outputs)
			assert.Equal(t, tt.classes, resp.Tensors[0].Values)

			// The monitor reads this exchange as gRPC frames them.
			rows, err := decode.Decode(nil, &decode.Spec{Protocol: "grpc"}, &decode.Input{
				Path: decode.GRPCModelInfer, ReqBody: frame(req), RespBody: frame(out), Status: 200})
			require.NoError(t, err)
			require.Len(t, rows, 2)
			assert.Len(t, rows[0].Features, 4)
			assert.Equal(t, tt.predName, rows[0].Predictions[0].Name)
			assert.Equal(t, tt.classes[0], rows[0].Predictions[0].Value.Num)
		})
	}
}

// frame prefixes msg with gRPC's 5-byte message header.
func frame(msg []byte) []byte {
	n := len(msg)
	return append([]byte{0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, msg...)
}
