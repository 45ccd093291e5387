package decode

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vaneproxy/vane/configs"
)

// Protobuf builders for the tests: messages are written field by field
// with protowire, as a generated marshaller would.

// pbBytes appends field num as a length-delimited value.
func pbBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func pbString(b []byte, num protowire.Number, s string) []byte {
	return pbBytes(b, num, []byte(s))
}

func pbVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// packedVarints is the payload of a packed repeated varint field.
func packedVarints[T int64 | int32 | uint64 | uint32 | int](vs ...T) []byte {
	var b []byte
	for _, v := range vs {
		b = protowire.AppendVarint(b, uint64(v))
	}
	return b
}

func packedFloats(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = protowire.AppendFixed32(b, math.Float32bits(v))
	}
	return b
}

func packedDoubles(vs ...float64) []byte {
	var b []byte
	for _, v := range vs {
		b = protowire.AppendFixed64(b, math.Float64bits(v))
	}
	return b
}

// grpcFrame prefixes msg with gRPC's 5-byte message header.
func grpcFrame(msg []byte) []byte {
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// inferTensorPB is an Infer{Input,Output}Tensor; contents is an
// InferTensorContents message (nil for none).
type inferTensorPB struct {
	name, datatype string
	shape          []int64
	contents       []byte
}

func (t inferTensorPB) marshal() []byte {
	b := pbString(nil, 1, t.name)
	b = pbString(b, 2, t.datatype)
	b = pbBytes(b, 3, packedVarints(t.shape...))
	b = pbString(pbBytes(b, 4, nil), 99, "an unknown field is skipped")
	if t.contents != nil {
		b = pbBytes(b, 5, t.contents)
	}
	return b
}

// inferMessage is a framed ModelInferRequest (tensorField 5, rawField 7)
// or ModelInferResponse (5, 6).
func inferMessage(rawField protowire.Number, ts []inferTensorPB, raws ...[]byte) []byte {
	b := pbString(nil, 1, "iris")
	b = pbString(b, 2, "v1")
	b = pbString(b, 3, "42")
	for _, t := range ts {
		b = pbBytes(b, 5, t.marshal())
	}
	for _, r := range raws {
		b = pbBytes(b, rawField, r)
	}
	return grpcFrame(b)
}

func inferReq(ts []inferTensorPB, raws ...[]byte) []byte  { return inferMessage(7, ts, raws...) }
func inferResp(ts []inferTensorPB, raws ...[]byte) []byte { return inferMessage(6, ts, raws...) }

// decodeGRPC decodes a gRPC exchange at path.
func decodeGRPC(t *testing.T, path string, features []string, req, resp []byte) ([]Row, error) {
	t.Helper()
	in := Input{Path: path, ReqBody: req, RespBody: resp, Status: 200, InferenceHeaderLen: -1, RespInferenceHeaderLen: -1}
	return Decode(nil, &Spec{Protocol: configs.ProtocolGRPC, Features: features}, &in)
}

// decodeHTTP decodes the JSON form of an exchange with protocol p.
func decodeHTTP(t *testing.T, p configs.Protocol, features []string, req, resp string) []Row {
	t.Helper()
	in := Input{ReqBody: []byte(req), RespBody: []byte(resp), Status: 200, InferenceHeaderLen: -1, RespInferenceHeaderLen: -1}
	rows, err := Decode(nil, &Spec{Protocol: p, Features: features}, &in)
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	return rows
}

// A ModelInfer exchange gives the rows its HTTP/JSON form gives.
func TestGRPCModelInferMatchesHTTP(t *testing.T) {
	tests := []struct {
		name       string
		features   []string
		req, resp  []byte
		jreq, jres string
	}{
		{"typed contents, [N,4] input, two outputs", nil,
			inferReq([]inferTensorPB{{"input0", "FP32", []int64{2, 4}, pbBytes(nil, 6, packedFloats(6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6))}}),
			inferResp([]inferTensorPB{
				{"output0", "INT64", []int64{2}, pbBytes(nil, 3, packedVarints[int64](2, 2))},
				{"probabilities", "FP32", []int64{2, 3}, pbBytes(nil, 6, packedFloats(0.091, 0.364, 0.545, 0.091, 0.364, 0.545))},
			}),
			v2IrisReq, v2IrisResp},
		{"raw contents, features named by spec, single output", iris,
			inferReq([]inferTensorPB{{"input0", "FP32", []int64{2, 4}, nil}}, le32(6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6)),
			inferResp([]inferTensorPB{{"output0", "INT64", []int64{2}, nil}}, le64(1, 2)),
			`{"inputs": [{"name": "input0", "shape": [2, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]}]}`,
			`{"outputs": [{"name": "output0", "shape": [2], "datatype": "INT64", "data": [1, 2]}]}`},
		{"one input per feature, BYTES and BOOL categorical", nil,
			inferReq([]inferTensorPB{
				{"a", "INT32", []int64{2}, pbBytes(nil, 2, packedVarints[int32](30, -41))},
				{"c", "BYTES", []int64{2, 1}, pbString(pbString(nil, 8, "x"), 8, "y")},
				{"b", "BOOL", []int64{2}, pbBytes(nil, 1, packedVarints(1, 0))},
			}),
			inferResp([]inferTensorPB{{"s", "FP64", []int64{2, 1}, pbBytes(nil, 7, packedDoubles(0.5, 0.25))}}),
			`{"inputs": [{"name": "a", "shape": [2], "datatype": "INT32", "data": [30, -41]},
				{"name": "c", "shape": [2, 1], "datatype": "BYTES", "data": [["x"], ["y"]]},
				{"name": "b", "shape": [2], "datatype": "BOOL", "data": [true, false]}]}`,
			`{"outputs": [{"name": "s", "shape": [2, 1], "datatype": "FP64", "data": [0.5, 0.25]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeGRPC(t, GRPCModelInfer, tt.features, tt.req, tt.resp)
			require.NoError(t, err)
			// FP32 values travel as float32 on both sides of the comparison.
			want := decodeHTTP(t, configs.ProtocolKServeV2, tt.features, tt.jreq, tt.jres)
			assert.Equal(t, roundRows(want), roundRows(got))
		})
	}
}

// roundRows rounds numeric values to float32 precision, so that FP32
// tensors compare with their JSON decimal form.
func roundRows(rows []Row) []Row {
	out := make([]Row, len(rows))
	for i, r := range rows {
		for _, f := range r.Features {
			f.Value.Num = float64(float32(f.Value.Num))
			out[i].Features = append(out[i].Features, f)
		}
		for _, f := range r.Predictions {
			f.Value.Num = float64(float32(f.Value.Num))
			out[i].Predictions = append(out[i].Predictions, f)
		}
	}
	return out
}

// Every datatype decodes from its typed contents field and from raw
// contents, packed or not.
func TestGRPCModelInferDatatypes(t *testing.T) {
	le16 := func(vs ...uint16) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint16(b, v)
		}
		return b
	}
	le32s := func(vs ...uint32) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint32(b, v)
		}
		return b
	}
	tests := []struct {
		datatype string
		contents []byte // InferTensorContents; nil when only raw applies
		raw      []byte
		want     []Value // a skipped element (NaN, infinities) is left out
		count    int     // elements in the tensor
	}{
		{"BOOL", pbBytes(nil, 1, packedVarints(1, 0)), []byte{1, 0}, []Value{cat("true"), cat("false")}, 2},
		{"INT8", pbBytes(nil, 2, packedVarints[int32](-3, 7)), []byte{0xfd, 7}, []Value{{Num: -3}, {Num: 7}}, 2},
		{"INT16", pbBytes(nil, 2, packedVarints[int32](-300, 7)), le16(0xfed4, 7), []Value{{Num: -300}, {Num: 7}}, 2},
		{"INT32", pbVarint(pbVarint(nil, 2, math.MaxUint64-69999), 2, 7), le32s(0xfffeee90, 7), []Value{{Num: -70000}, {Num: 7}}, 2},
		{"INT64", pbBytes(nil, 3, packedVarints[int64](-5, 1<<40)), le64(-5, 1<<40), []Value{{Num: -5}, {Num: 1 << 40}}, 2},
		{"UINT8", pbBytes(nil, 4, packedVarints[uint32](255, 1)), []byte{255, 1}, []Value{{Num: 255}, {Num: 1}}, 2},
		{"UINT16", pbBytes(nil, 4, packedVarints[uint32](65535, 1)), le16(65535, 1), []Value{{Num: 65535}, {Num: 1}}, 2},
		{"UINT32", pbBytes(nil, 4, packedVarints[uint32](math.MaxUint32, 1)), le32s(math.MaxUint32, 1), []Value{{Num: math.MaxUint32}, {Num: 1}}, 2},
		{"UINT64", pbBytes(nil, 5, packedVarints[uint64](1<<63, 1)), le64(-1<<63, 1), []Value{{Num: 1 << 63}, {Num: 1}}, 2},
		{"FP32", pbBytes(nil, 6, packedFloats(1.5, float32(math.NaN()))), le32(1.5, float32(math.Inf(1))), []Value{{Num: 1.5}}, 2},
		{"FP64", pbBytes(nil, 7, packedDoubles(-2.25, 1e300)), le64(int64(math.Float64bits(-2.25)), int64(math.Float64bits(1e300))), []Value{{Num: -2.25}, {Num: 1e300}}, 2},
		{"BYTES", pbString(pbString(nil, 8, "ab"), 8, ""), bytesElems("ab", ""), []Value{cat("ab"), cat("")}, 2},
		{"FP16", nil, le16(0x3c00, 0xc000), []Value{{Num: 1}, {Num: -2}}, 2},
		{"BF16", nil, le16(0x3fc0, 0x4000), []Value{{Num: 1.5}, {Num: 2}}, 2},
	}
	for _, tt := range tests {
		shape := []int64{int64(tt.count), 1}
		check := func(t *testing.T, rows []Row) {
			t.Helper()
			var got []Value
			for _, r := range rows {
				for _, f := range r.Features {
					assert.Equal(t, "x", f.Name)
					got = append(got, f.Value)
				}
			}
			assert.Equal(t, tt.want, got)
		}
		if tt.contents != nil {
			t.Run(tt.datatype+" contents", func(t *testing.T) {
				rows, err := decodeGRPC(t, GRPCModelInfer, nil, inferReq([]inferTensorPB{{"x", tt.datatype, shape, tt.contents}}), nil)
				require.NoError(t, err)
				check(t, rows)
			})
		}
		t.Run(tt.datatype+" raw", func(t *testing.T) {
			rows, err := decodeGRPC(t, GRPCModelInfer, nil, inferReq([]inferTensorPB{{"x", tt.datatype, shape, nil}}, tt.raw), nil)
			require.NoError(t, err)
			check(t, rows)
		})
	}
}

// Unpacked repeated fields (proto2 encoders) and shapes decode like
// packed ones; other methods yield nothing and no error.
func TestGRPCModelInferUnpackedAndOtherMethods(t *testing.T) {
	tensor := pbString(nil, 1, "x")
	tensor = pbString(tensor, 2, "fp64")
	tensor = pbVarint(pbVarint(tensor, 3, 2), 3, 1)
	contents := protowire.AppendTag(nil, 7, protowire.Fixed64Type)
	contents = protowire.AppendFixed64(contents, math.Float64bits(0.5))
	contents = pbBytes(contents, 7, packedDoubles(0.75))
	tensor = pbBytes(tensor, 5, contents)
	req := grpcFrame(pbBytes(nil, 5, tensor))
	rows, err := decodeGRPC(t, GRPCModelInfer, nil, req, nil)
	require.NoError(t, err)
	assert.Equal(t, []Row{{Features: fs(n("x", 0.5))}, {Features: fs(n("x", 0.75))}}, rows)

	for _, path := range []string{"/inference.GRPCInferenceService/ModelReady", "/grpc.health.v1.Health/Check", ""} {
		rows, err := decodeGRPC(t, path, nil, req, []byte("not protobuf"))
		assert.NoError(t, err, path)
		assert.Empty(t, rows, path)
	}
}

// Malformed messages are errors wrapping ErrMalformed that leave dst alone.
func TestGRPCMalformed(t *testing.T) {
	good := inferReq([]inferTensorPB{{"x", "FP32", []int64{1, 2}, pbBytes(nil, 6, packedFloats(1, 2))}})
	compressed := append([]byte(nil), good...)
	compressed[0] = 1
	tests := []struct {
		name, path string
		req        []byte
		reason     string
	}{
		{"compressed", GRPCModelInfer, compressed, "compressed gRPC message"},
		{"bad flag", GRPCModelInfer, append([]byte{7}, good[1:]...), "bad gRPC message flag"},
		{"prefix cut short", GRPCModelInfer, good[:3], "prefix cut short"},
		{"message cut short", GRPCModelInfer, good[:len(good)-1], "gRPC message beyond the body"},
		{"not protobuf", GRPCModelInfer, grpcFrame([]byte{0xff, 0xff, 0xff}), "bad protobuf"},
		{"no inputs", GRPCModelInfer, grpcFrame(pbString(nil, 1, "iris")), "no inputs"},
		{"too few values", GRPCModelInfer, inferReq([]inferTensorPB{{"x", "FP32", []int64{2, 2}, pbBytes(nil, 6, packedFloats(1, 2))}}), "input 0: fewer values than the shape holds"},
		{"too many values", GRPCModelInfer, inferReq([]inferTensorPB{{"x", "FP32", []int64{1}, pbBytes(nil, 6, packedFloats(1, 2))}}), "more values than the shape holds"},
		{"wrong wire type", GRPCModelInfer, inferReq([]inferTensorPB{{"x", "FP32", []int64{1}, pbVarint(nil, 6, 1)}}), "wrong wire type"},
		{"FP16 as contents", GRPCModelInfer, inferReq([]inferTensorPB{{"x", "FP16", []int64{1}, pbBytes(nil, 6, packedFloats(1))}}), "datatype without a contents field"},
		{"raw size off", GRPCModelInfer, inferReq([]inferTensorPB{{"x", "FP32", []int64{1, 2}, nil}}, le32(1)), "does not match the shape"},
		{"raw count off", GRPCModelInfer, inferReq([]inferTensorPB{{"x", "FP32", []int64{1}, nil}, {"y", "FP32", []int64{1}, nil}}, le32(1)), "raw contents do not number the inputs"},
		{"negative dimension", GRPCModelInfer, inferReq([]inferTensorPB{{"x", "FP32", []int64{-1}, nil}}), "negative dimension"},
		{"huge shape", GRPCModelInfer, inferReq([]inferTensorPB{{"x", "FP32", []int64{1 << 30, 1 << 30, 1 << 30}, pbBytes(nil, 6, packedFloats(1))}}), "shape too large"},
		{"huge shape without data", GRPCModelInfer, inferReq([]inferTensorPB{{"x", "INT64", []int64{1 << 39, 2}, nil}}), "fewer values than the shape holds"},
		{"predict without inputs", GRPCPredict, grpcFrame(pbBytes(nil, 1, pbString(nil, 1, "iris"))), "no inputs"},
		{"predict unknown dtype", GRPCPredict, predictMessage(2, tfEntry{"x", tfTensorPB(99, nil)}), "input 0: unsupported dtype"},
		{"predict broadcast too large", GRPCPredict, predictMessage(2, tfEntry{"x", tfTensorPB(1, []int64{1 << 20}, pbBytes(nil, 5, packedFloats(1))...)}), "broadcast shape too large"},
		{"predict broadcasts beyond the budget", GRPCPredict, predictMessage(2,
			tfEntry{"x", tfTensorPB(1, []int64{1 << 15}, pbBytes(nil, 5, packedFloats(1))...)},
			tfEntry{"y", tfTensorPB(1, []int64{1 << 15}, pbBytes(nil, 5, packedFloats(1))...)},
			tfEntry{"z", tfTensorPB(1, []int64{1}, pbBytes(nil, 5, packedFloats(1))...)},
			tfEntry{"w", tfTensorPB(1, []int64{2}, pbBytes(nil, 5, packedFloats(1))...)}), "input 3: broadcast shape too large"},
		{"predict broadcasts beyond the budget over two messages", GRPCPredict, append(
			predictMessage(2, tfEntry{"x", tfTensorPB(1, []int64{1 << 16}, pbBytes(nil, 5, packedFloats(1))...)}),
			predictMessage(2, tfEntry{"x", tfTensorPB(1, []int64{2}, pbBytes(nil, 5, packedFloats(1))...)})...), "input 0: broadcast shape too large"},
		{"predict scalars on too many rows", GRPCPredict, predictMessage(2, append([]tfEntry{
			{"x", tfTensorPB(1, []int64{1 << 12}, pbBytes(nil, 4, make([]byte, 4<<12))...)}},
			manyScalars(300)...)...), "scalar inputs repeated on too many rows"},
		{"predict string content", GRPCPredict, predictMessage(2, tfEntry{"x", tfTensorPB(7, []int64{1}, pbString(nil, 4, "ab")...)}), "tensor_content of a STRING tensor"},
		{"predict unknown rank", GRPCPredict, predictMessage(2, tfEntry{"x", pbBytes(pbVarint(nil, 1, 1), 2, pbVarint(nil, 3, 1))}), "unknown rank"},
		{"predict unknown size", GRPCPredict, predictMessage(2, tfEntry{"x", tfTensorPB(1, []int64{-1}, pbBytes(nil, 5, packedFloats(1))...)}), "negative dimension"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []Row{{Features: fs(n("keep", 1))}}
			in := Input{Path: tt.path, ReqBody: tt.req, Status: 200}
			got, err := Decode(dst, &Spec{Protocol: configs.ProtocolGRPC}, &in)
			require.ErrorIs(t, err, ErrMalformed)
			assert.ErrorContains(t, err, "grpc: request: ")
			assert.ErrorContains(t, err, tt.reason)
			assert.Equal(t, dst, got)
		})
	}
}

// tfEntry is one entry of a Predict map: a key and a TensorProto.
type tfEntry struct {
	key    string
	tensor []byte
}

// tfTensorPB is a TensorProto of dtype and shape (nil for a scalar) with
// the fields in values appended.
func tfTensorPB(dtype uint64, shape []int64, values ...byte) []byte {
	b := pbVarint(nil, 1, dtype)
	var sh []byte
	for _, d := range shape {
		sh = pbBytes(sh, 2, pbString(pbVarint(nil, 1, uint64(d)), 2, "dim"))
	}
	b = pbBytes(b, 2, sh)
	return append(b, values...)
}

// predictMessage is a framed PredictRequest (mapField 2) or
// PredictResponse (mapField 1).
func predictMessage(mapField protowire.Number, entries ...tfEntry) []byte {
	spec := pbString(nil, 1, "iris")
	spec = pbBytes(spec, 2, pbVarint(nil, 1, 1)) // version {value: 1}
	b := pbBytes(nil, 3-mapField, spec)          // model_spec: 1 in requests, 2 in responses
	for _, e := range entries {
		b = pbBytes(b, mapField, pbBytes(pbString(nil, 1, e.key), 2, e.tensor))
	}
	return grpcFrame(b)
}

// A Predict exchange gives the rows of the HTTP column format.
func TestGRPCPredictMatchesHTTP(t *testing.T) {
	tests := []struct {
		name       string
		features   []string
		req, resp  []byte
		jreq, jres string
	}{
		{"list, vector and scalar columns", nil,
			predictMessage(2,
				tfEntry{"x", tfTensorPB(1, []int64{1, 2}, pbBytes(nil, 5, packedFloats(1, 2))...)},
				tfEntry{"z", tfTensorPB(2, nil, pbBytes(nil, 6, packedDoubles(0.5))...)},
				tfEntry{"y", tfTensorPB(9, []int64{1}, pbBytes(nil, 10, packedVarints[int64](3))...)}),
			predictMessage(1, tfEntry{"scores", tfTensorPB(1, []int64{1, 2}, pbBytes(nil, 4, le32(0.1, 0.9))...)}),
			`{"inputs": {"x": [[1.0, 2.0]], "z": 0.5, "y": [3]}}`,
			`{"outputs": {"scores": [[0.1, 0.9]]}}`},
		{"a single [N,K] input is list instances; classes and scores", []string{"a"},
			predictMessage(2, tfEntry{"x", tfTensorPB(3, []int64{2, 2}, pbBytes(nil, 7, packedVarints[int32](1, 2, 3, -4))...)}),
			predictMessage(1,
				tfEntry{"classes", tfTensorPB(7, []int64{2}, pbString(pbString(nil, 8, "cat"), 8, "dog")...)},
				tfEntry{"probs", tfTensorPB(19, []int64{2, 1}, pbBytes(nil, 13, packedVarints[int32](0x3800, 0x3c00))...)}),
			`{"inputs": {"x": [[1, 2], [3, -4]]}}`,
			`{"outputs": {"classes": ["cat", "dog"], "probs": [[0.5], [1]]}}`},
		{"broadcast value, raw bool, uint columns", nil,
			predictMessage(2,
				tfEntry{"b", tfTensorPB(10, []int64{2}, pbBytes(nil, 4, []byte{1, 0})...)},
				tfEntry{"u", tfTensorPB(22, []int64{2}, pbVarint(nil, 16, 7)...)},
				tfEntry{"w", tfTensorPB(23, []int64{2}, pbBytes(nil, 17, packedVarints[uint64](8, 9))...)}),
			predictMessage(1, tfEntry{"y", tfTensorPB(6, []int64{2}, pbBytes(nil, 7, packedVarints[int32](-1, 1))...)}),
			`{"inputs": {"b": [true, false], "u": [7, 7], "w": [8, 9]}}`,
			`{"outputs": {"y": [-1, 1]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeGRPC(t, GRPCPredict, tt.features, tt.req, tt.resp)
			require.NoError(t, err)
			want := decodeHTTP(t, configs.ProtocolTFServing, tt.features, tt.jreq, tt.jres)
			assert.Equal(t, roundRows(want), roundRows(got))
		})
	}
}

// A non-2xx or trailers-only answer gives features only; a streamed
// exchange of several messages gives the rows of each.
func TestGRPCStatusAndStreams(t *testing.T) {
	one := func(v float32) []byte {
		return inferReq([]inferTensorPB{{"x", "FP32", []int64{1}, pbBytes(nil, 6, packedFloats(v))}})
	}
	req := append(one(1), one(2)...)
	resp := inferResp([]inferTensorPB{{"y", "FP32", []int64{2}, pbBytes(nil, 6, packedFloats(3, 4))}})
	rows, err := decodeGRPC(t, GRPCModelInfer, nil, req, resp)
	require.NoError(t, err)
	assert.Equal(t, []Row{
		{Features: fs(n("x", 1)), Predictions: fs(n("prediction", 3))},
		{Features: fs(n("x", 2)), Predictions: fs(n("prediction", 4))},
	}, rows)

	in := Input{Path: GRPCModelInfer, ReqBody: req, Status: 200}
	rows, err = Decode(nil, &Spec{Protocol: configs.ProtocolGRPC}, &in)
	require.NoError(t, err)
	assert.Equal(t, []Row{{Features: fs(n("x", 1))}, {Features: fs(n("x", 2))}}, rows)
}

// manyScalars are n rank-0 FP32 tensors s0, s1, ...
func manyScalars(n int) []tfEntry {
	out := make([]tfEntry, n)
	for i := range out {
		out[i] = tfEntry{fmt.Sprintf("s%d", i), tfTensorPB(1, nil, pbBytes(nil, 5, packedFloats(1))...)}
	}
	return out
}
