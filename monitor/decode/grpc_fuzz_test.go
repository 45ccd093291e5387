package decode

import (
	"testing"

	"github.com/vaneproxy/vane/configs"
)

// grpcSeeds are well-formed exchanges of both decoded methods.
func grpcSeeds() (infer, predict [][2][]byte) {
	infer = [][2][]byte{
		{inferReq([]inferTensorPB{{"input0", "FP32", []int64{2, 2}, pbBytes(nil, 6, packedFloats(6.8, 2.8, 4.8, 1.4))}}),
			inferResp([]inferTensorPB{
				{"output0", "INT64", []int64{2}, pbBytes(nil, 3, packedVarints[int64](2, 1))},
				{"label", "BYTES", []int64{2, 1}, pbString(pbString(nil, 8, "a"), 8, "b")}})},
		{inferReq([]inferTensorPB{{"x", "BYTES", []int64{1, 2}, nil}, {"h", "FP16", []int64{1}, nil}}, bytesElems("ab", "c"), []byte{0, 0x3c}),
			inferResp([]inferTensorPB{{"y", "BOOL", []int64{1}, nil}}, []byte{1})},
	}
	predict = [][2][]byte{
		{predictMessage(2,
			tfEntry{"x", tfTensorPB(1, []int64{2, 2}, pbBytes(nil, 4, le32(1, 2, 3, 4))...)},
			tfEntry{"lang", tfTensorPB(7, nil, pbString(nil, 8, "en")...)}),
			predictMessage(1, tfEntry{"scores", tfTensorPB(2, []int64{2}, pbBytes(nil, 6, packedDoubles(0.1, 0.9))...)})},
		{predictMessage(2, tfEntry{"b", tfTensorPB(10, []int64{3}, pbVarint(nil, 11, 1)...)}),
			predictMessage(1, tfEntry{"h", tfTensorPB(19, []int64{1, 1}, pbBytes(nil, 13, packedVarints[int32](0x3c00))...)})},
	}
	return infer, predict
}

// FuzzGRPC decodes ModelInfer (predict false) and Predict exchanges.
func FuzzGRPC(f *testing.F) {
	infer, predict := grpcSeeds()
	for _, s := range infer {
		f.Add(s[0], s[1], false)
	}
	for _, s := range predict {
		f.Add(s[0], s[1], true)
	}
	f.Fuzz(func(t *testing.T, req, resp []byte, predict bool) {
		path := GRPCModelInfer
		if predict {
			path = GRPCPredict
		}
		in := Input{Path: path, ReqBody: req, RespBody: resp, Status: 200, InferenceHeaderLen: -1, RespInferenceHeaderLen: -1}
		fuzzDecode(t, &Spec{Protocol: configs.ProtocolGRPC, Features: []string{"a"}}, &in)
	})
}
