package decode

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// grpcBenchCases are the gRPC forms of benchCases' kserve-v2 and
// tfserving payloads: n iris rows, n classes and n×3 probabilities.
func grpcBenchCases(n int) []benchCase {
	var flat []float32
	for _, r := range irisRows(n) {
		for _, v := range r {
			flat = append(flat, float32(v))
		}
	}
	classes, probs := make([]int64, n), make([]float32, 0, 3*n)
	for i := range classes {
		classes[i] = int64(i % 3)
		probs = append(probs, 0.091, 0.364, 0.545)
	}
	n64 := int64(n)
	outputs := []inferTensorPB{
		{"output0", "INT64", []int64{n64}, pbBytes(nil, 3, packedVarints(classes...))},
		{"probabilities", "FP32", []int64{n64, 3}, pbBytes(nil, 6, packedFloats(probs...))},
	}
	ex := func(path string, req, resp []byte) Input {
		return Input{Path: path, ReqBody: req, RespBody: resp, Status: 200, InferenceHeaderLen: -1, RespInferenceHeaderLen: -1}
	}
	spec := &Spec{Protocol: configs.ProtocolGRPC, Features: iris}
	return []benchCase{
		{"modelinfer/contents", spec, ex(GRPCModelInfer,
			inferReq([]inferTensorPB{{"input0", "FP32", []int64{n64, 4}, pbBytes(nil, 6, packedFloats(flat...))}}), inferResp(outputs))},
		{"modelinfer/raw", spec, ex(GRPCModelInfer,
			inferReq([]inferTensorPB{{"input0", "FP32", []int64{n64, 4}, nil}}, le32(flat...)),
			inferResp([]inferTensorPB{{"output0", "INT64", []int64{n64}, nil}}, le64(classes...)))},
		{"predict", spec, ex(GRPCPredict,
			predictMessage(2, tfEntry{"x", tfTensorPB(1, []int64{n64, 4}, pbBytes(nil, 4, le32(flat...))...)}),
			predictMessage(1, tfEntry{"scores", tfTensorPB(1, []int64{n64, 3}, pbBytes(nil, 5, packedFloats(probs...))...)}))},
	}
}

// BenchmarkDecodeGRPC is BenchmarkDecode for the gRPC messages.
func BenchmarkDecodeGRPC(b *testing.B) {
	for _, n := range []int{1, 32} {
		for _, bc := range grpcBenchCases(n) {
			b.Run(fmt.Sprintf("%s/rows=%d", bc.name, n), func(b *testing.B) {
				var d Decoder
				rows, err := d.Decode(nil, bc.spec, &bc.in)
				require.NoError(b, err)
				require.Len(b, rows, n)
				b.SetBytes(int64(len(bc.in.ReqBody) + len(bc.in.RespBody)))
				b.ReportAllocs()
				for b.Loop() {
					rows, _ = d.Decode(rows[:0], bc.spec, &bc.in)
				}
			})
		}
	}
}

// The benchmark payloads decode to full rows, so the figures measure real
// work.
func TestGRPCBenchCases(t *testing.T) {
	for _, n := range []int{1, 32} {
		for _, bc := range grpcBenchCases(n) {
			rows, err := Decode(nil, bc.spec, &bc.in)
			require.NoError(t, err, bc.name)
			require.Len(t, rows, n, bc.name)
			require.Len(t, rows[n-1].Features, 4, bc.name)
			require.NotEmpty(t, rows[n-1].Predictions, bc.name)
		}
	}
}
