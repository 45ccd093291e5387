package toy

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// serveGRPC serves m's gRPC server on loopback and returns a client
// connection to it.
func serveGRPC(t *testing.T, m *Model) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := m.NewGRPCServer()
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// call invokes a method of the inference service with raw messages.
func grpcCall(t *testing.T, conn *grpc.ClientConn, method string, req []byte) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var resp []byte
	err := conn.Invoke(ctx, "/"+InferenceService+"/"+method, &req, &resp, grpc.ForceCodec(RawCodec{}))
	return resp, err
}

func infer(t *testing.T, conn *grpc.ClientConn, req InferMessage) (InferMessage, error) {
	t.Helper()
	b, err := req.MarshalRequest()
	require.NoError(t, err)
	out, err := grpcCall(t, conn, "ModelInfer", b)
	if err != nil {
		return InferMessage{}, err
	}
	return ParseInferResponse(out)
}

var irisRows = []float64{6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6, 5.0, 3.5, 1.3, 0.3}

// ModelInfer answers what /v2/models/iris/infer answers for the same rows,
// with typed or raw contents.
func TestGRPCModelInferMatchesHTTP(t *testing.T) {
	m := New(Options{Version: "v2"})
	conn := serveGRPC(t, m)
	srv := httptest.NewServer(m)
	defer srv.Close()
	r := call(t, srv, http.MethodPost, "/v2/models/iris/infer", "application/json",
		`{"inputs": [{"name": "input0", "shape": [3, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6, 5.0, 3.5, 1.3, 0.3]}]}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	var want struct {
		Outputs []struct {
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.raw), &want))
	require.Len(t, want.Outputs, 2)

	for _, raw := range []bool{false, true} {
		got, err := infer(t, conn, InferMessage{ModelName: "iris", ID: "7", Raw: raw, Tensors: []InferTensor{
			{Name: "input0", Datatype: "FP32", Shape: []int64{3, 4}, Values: irisRows}}})
		require.NoError(t, err, "raw %v", raw)
		assert.Equal(t, "iris", got.ModelName)
		assert.Equal(t, "v2", got.ModelVersion)
		assert.Equal(t, "7", got.ID)
		assert.Equal(t, raw, got.Raw, "the answer travels as the request did")
		require.Len(t, got.Tensors, 2)
		assert.Equal(t, InferTensor{Name: "output0", Datatype: "INT64", Shape: []int64{3}, Values: want.Outputs[0].Data}, got.Tensors[0])
		assert.Equal(t, []int64{3, 3}, got.Tensors[1].Shape)
		assert.InDeltaSlice(t, want.Outputs[1].Data, got.Tensors[1].Values, 1e-6)
	}
}

// One input per feature, a requested output, other datatypes.
func TestGRPCModelInferPerFeature(t *testing.T) {
	conn := serveGRPC(t, New(Options{Version: "v2"}))
	req := InferMessage{ModelName: "iris", ModelVersion: "v2", Requested: []string{"output0"}}
	for j, f := range DefaultFeatures {
		dt := []string{"FP64", "FP32", "INT32", "UINT8"}[j]
		req.Tensors = append(req.Tensors, InferTensor{Name: f, Datatype: dt, Shape: []int64{2, 1}, Values: []float64{irisRows[j], irisRows[4+j]}})
	}
	req.Tensors[2].Values = []float64{5, 1} // petal_length as INT32
	req.Tensors[3].Values = []float64{2, 0} // petal_width as UINT8
	got, err := infer(t, conn, req)
	require.NoError(t, err)
	require.Len(t, got.Tensors, 1)
	assert.Equal(t, "output0", got.Tensors[0].Name)
	assert.Equal(t, []float64{2, 0}, got.Tensors[0].Values)
}

// Errors are gRPC statuses, never JSON.
func TestGRPCModelInferErrors(t *testing.T) {
	m := New(Options{})
	conn := serveGRPC(t, m)
	good := InferMessage{ModelName: "iris", Tensors: []InferTensor{{Name: "input0", Datatype: "FP32", Shape: []int64{1, 4}, Values: irisRows[:4]}}}
	tests := []struct {
		name string
		req  func() InferMessage
		code codes.Code
		msg  string
	}{
		{"other model", func() InferMessage { r := good; r.ModelName = "wine"; return r }, codes.NotFound, `no model "wine"`},
		{"other version", func() InferMessage { r := good; r.ModelVersion = "v9"; return r }, codes.NotFound, `no version "v9"`},
		{"bad shape", func() InferMessage {
			r := good
			r.Tensors = []InferTensor{{Name: "input0", Datatype: "FP32", Shape: []int64{1, 3}, Values: irisRows[:3]}}
			return r
		}, codes.InvalidArgument, "want [N, 4]"},
		{"unknown output", func() InferMessage { r := good; r.Requested = []string{"nope"}; return r }, codes.InvalidArgument, `unknown output "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := infer(t, conn, tt.req())
			assert.Equal(t, tt.code, status.Code(err), "%v", err)
			assert.Contains(t, status.Convert(err).Message(), tt.msg)
		})
	}
	t.Run("values not matching the shape", func(t *testing.T) {
		b, err := good.MarshalRequest()
		require.NoError(t, err)
		b = protowire.AppendBytes(protowire.AppendTag(b, 7, protowire.BytesType), []byte{1, 2, 3})
		_, err = grpcCall(t, conn, "ModelInfer", b)
		assert.Equal(t, codes.InvalidArgument, status.Code(err))
	})
	t.Run("failing", func(t *testing.T) {
		m.SetFailing(true)
		defer m.SetFailing(false)
		_, err := infer(t, conn, good)
		assert.Equal(t, codes.Unavailable, status.Code(err))
		h, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		assert.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, h.GetStatus())
	})
	assert.Equal(t, int64(6), m.Requests())
}

// Liveness, readiness and the health service.
func TestGRPCReadiness(t *testing.T) {
	m := New(Options{})
	conn := serveGRPC(t, m)
	ready := func(method string, req []byte) bool {
		t.Helper()
		out, err := grpcCall(t, conn, method, req)
		require.NoError(t, err, method)
		v, n := protowire.ConsumeVarint(out[1:])
		require.Positive(t, n)
		return v == 1
	}
	model := func(name, version string) []byte {
		return protowire.AppendString(protowire.AppendTag(protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), name), 2, protowire.BytesType), version)
	}
	assert.True(t, ready("ServerLive", nil))
	assert.True(t, ready("ServerReady", nil))
	assert.True(t, ready("ModelReady", model("iris", "v1")))
	_, err := grpcCall(t, conn, "ModelReady", model("iris", "v2"))
	assert.Equal(t, codes.NotFound, status.Code(err))
	_, err = grpcCall(t, conn, "ModelMetadata", nil)
	assert.Equal(t, codes.Unimplemented, status.Code(err))

	health := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", InferenceService} {
		h, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err)
		assert.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())
	}
	m.SetFailing(true)
	assert.True(t, ready("ServerLive", nil))
	assert.False(t, ready("ServerReady", nil))
	assert.False(t, ready("ModelReady", model("iris", "")))
}
