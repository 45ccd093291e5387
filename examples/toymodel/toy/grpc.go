package toy

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// The gRPC side of the toy model: KServe V2 / Triton's
// inference.GRPCInferenceService (ModelInfer, ServerLive, ServerReady,
// ModelReady), registered by hand with a grpc.ServiceDesc and served with
// RawCodec, and the standard grpc.health.v1.Health service. ModelInfer
// follows the HTTP /v2/.../infer rules (v2Infer): one input of shape
// [N, F] or one [N] / [N,1] input per feature; answers output0 (INT64
// classes) and, for versions other than v1, probabilities (FP32 [N,3]),
// filtered by the requested outputs; the answer's values travel raw when
// the request's did. Errors are gRPC statuses: INVALID_ARGUMENT for a bad
// request, NOT_FOUND for another model or version, UNAVAILABLE while
// failing or for an injected failure.

// InferenceService is the full gRPC name of the KServe V2 inference
// service.
const InferenceService = "inference.GRPCInferenceService"

// inferenceServer is the HandlerType of the hand-written service
// description; *Model implements it.
type inferenceServer interface {
	modelInfer(ctx context.Context, req []byte) ([]byte, error)
}

var _ inferenceServer = (*Model)(nil)

// NewGRPCServer returns a gRPC server carrying m's inference service and
// the health service, with RawCodec forced; opts add server options. The
// caller serves and stops it.
func (m *Model) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	s := grpc.NewServer(append(opts, grpc.ForceServerCodec(RawCodec{}))...)
	s.RegisterService(m.inferenceDesc(), m)
	healthpb.RegisterHealthServer(s, &healthService{m: m})
	return s
}

// inferenceDesc describes inference.GRPCInferenceService's unary methods
// that the toy implements.
func (m *Model) inferenceDesc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: InferenceService,
		HandlerType: (*inferenceServer)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "ModelInfer", Handler: unary("ModelInfer", (*Model).modelInfer)},
			{MethodName: "ServerLive", Handler: unary("ServerLive", func(*Model, context.Context, []byte) ([]byte, error) {
				return protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1), nil
			})},
			{MethodName: "ServerReady", Handler: unary("ServerReady", func(m *Model, _ context.Context, _ []byte) ([]byte, error) {
				return readyMessage(!m.failing.Load()), nil
			})},
			{MethodName: "ModelReady", Handler: unary("ModelReady", (*Model).modelReady)},
		},
		Metadata: "grpc_service.proto",
	}
}

// unary adapts fn to a grpc.MethodHandler whose messages are raw bytes.
func unary(method string, fn func(*Model, context.Context, []byte) ([]byte, error)) grpc.MethodHandler {
	full := "/" + InferenceService + "/" + method
	return func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
		var in []byte
		if err := dec(&in); err != nil {
			return nil, err
		}
		call := func(ctx context.Context, req any) (any, error) {
			out, err := fn(srv.(*Model), ctx, *req.(*[]byte))
			if err != nil {
				return nil, err
			}
			return &out, nil
		}
		if icpt == nil {
			return call(ctx, &in)
		}
		return icpt(ctx, &in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, call)
	}
}

// readyMessage is ServerReadyResponse / ModelReadyResponse {1: ready}.
func readyMessage(ready bool) []byte {
	v := uint64(0)
	if ready {
		v = 1
	}
	return protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), v)
}

// modelReady answers ModelReadyRequest {1 name, 2 version}.
func (m *Model) modelReady(_ context.Context, req []byte) ([]byte, error) {
	var name, version string
	err := fieldsOf(req, func(num protowire.Number, typ protowire.Type, _ uint64, p []byte) error {
		if typ == protowire.BytesType && num == 1 {
			name = string(p)
		} else if typ == protowire.BytesType && num == 2 {
			version = string(p)
		}
		return nil
	})
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := m.checkModel(name, version); err != nil {
		return nil, err
	}
	return readyMessage(!m.failing.Load()), nil
}

// checkModel is NOT_FOUND unless name and version (empty: any) are m's.
func (m *Model) checkModel(name, version string) error {
	if name != m.opts.Name {
		return status.Errorf(codes.NotFound, "no model %q (serving %s)", name, m.opts.Name)
	}
	if version != "" && version != m.opts.Version {
		return status.Errorf(codes.NotFound, "model %s has no version %q (serving %s)", name, version, m.opts.Version)
	}
	return nil
}

// modelInfer answers a ModelInferRequest.
func (m *Model) modelInfer(ctx context.Context, body []byte) ([]byte, error) {
	m.requests.Add(1)
	req, err := ParseInferRequest(body)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "ModelInferRequest: %v", err)
	}
	if err := m.checkModel(req.ModelName, req.ModelVersion); err != nil {
		return nil, err
	}
	if err := m.beginGRPC(ctx); err != nil {
		return nil, err
	}
	inputs := make([]v2Tensor, len(req.Tensors))
	for i, t := range req.Tensors {
		data := make([]any, len(t.Values))
		for j, v := range t.Values {
			data[j] = v
		}
		inputs[i] = v2Tensor{Name: t.Name, Shape: t.Shape, Datatype: t.Datatype, Data: data}
	}
	rows, err := m.v2Rows(inputs, nil)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	res := m.predict(rows)
	n := int64(len(rows))
	all := map[string]InferTensor{"output0": {Name: "output0", Datatype: "INT64", Shape: []int64{n}, Values: make([]float64, n)}}
	for i, c := range res.Classes {
		all["output0"].Values[i] = float64(c)
	}
	order := []string{"output0"}
	if res.Probs != nil {
		flat := make([]float64, 0, 3*n)
		for _, p := range res.Probs {
			flat = append(flat, p...)
		}
		all["probabilities"] = InferTensor{Name: "probabilities", Datatype: "FP32", Shape: []int64{n, 3}, Values: flat}
		order = append(order, "probabilities")
	}
	if len(req.Requested) > 0 {
		order = order[:0]
		for _, name := range req.Requested {
			if _, ok := all[name]; !ok {
				return nil, status.Errorf(codes.InvalidArgument, "unknown output %q", name)
			}
			order = append(order, name)
		}
	}
	resp := InferMessage{ModelName: m.opts.Name, ModelVersion: m.opts.Version, ID: req.ID, Raw: req.Raw}
	for _, name := range order {
		resp.Tensors = append(resp.Tensors, all[name])
	}
	out, err := resp.MarshalResponse()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return out, nil
}

// beginGRPC is begin's bookkeeping for a gRPC call: refuse while failing,
// sleep Delay, inject FailRate failures.
func (m *Model) beginGRPC(ctx context.Context) error {
	if m.failing.Load() {
		return status.Errorf(codes.Unavailable, "model %s %s is failing", m.opts.Name, m.opts.Version)
	}
	if m.opts.Delay > 0 {
		t := time.NewTimer(m.opts.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	if m.shouldFail() {
		return status.Error(codes.Unavailable, fmt.Sprintf("injected failure (fail rate %g)", m.opts.FailRate))
	}
	return nil
}

// healthService is grpc.health.v1.Health for the toy: SERVING, or
// NOT_SERVING while the model is failing, for the server ("") and the
// inference service; other services are unknown.
type healthService struct {
	healthpb.UnimplementedHealthServer
	m *Model
}

func (h *healthService) Check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	switch req.GetService() {
	case "", InferenceService:
	default:
		return nil, status.Errorf(codes.NotFound, "unknown service %q", req.GetService())
	}
	st := healthpb.HealthCheckResponse_SERVING
	if h.m.failing.Load() {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	return &healthpb.HealthCheckResponse{Status: st}, nil
}
