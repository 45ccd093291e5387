package decode

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// binTensor is one tensor of a Triton binary-extension body: with raw set
// it travels as binary data, else as JSON data.
type binTensor struct {
	name, datatype string
	shape          []int
	raw            []byte
	data           any
}

// tritonBody builds a binary-extension body under key ("inputs" or
// "outputs") and returns it with its JSON header's length.
func tritonBody(t testing.TB, key string, ts ...binTensor) ([]byte, int) {
	t.Helper()
	var list []map[string]any
	var raw []byte
	for _, x := range ts {
		m := map[string]any{"name": x.name, "datatype": x.datatype, "shape": x.shape}
		if x.raw != nil {
			m["parameters"] = map[string]any{"binary_data_size": len(x.raw)}
			raw = append(raw, x.raw...)
		} else {
			m["data"] = x.data
		}
		list = append(list, m)
	}
	header, err := json.Marshal(map[string]any{key: list})
	require.NoError(t, err)
	return append(header, raw...), len(header)
}

func le32(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func le64(vs ...int64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	return b
}

func bytesElems(ss ...string) []byte {
	var b []byte
	for _, s := range ss {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// binExchange is a 200 exchange of two binary-extension bodies.
func binExchange(req []byte, reqLen int, resp []byte, respLen int) Input {
	return Input{ReqBody: req, RespBody: resp, InferenceHeaderLen: reqLen, RespInferenceHeaderLen: respLen, Status: 200}
}

func TestTritonBinary(t *testing.T) {
	spec := &Spec{Protocol: configs.ProtocolKServeV2, Features: iris}

	t.Run("FP32 rows in, INT64, FP32 and BYTES out", func(t *testing.T) {
		req, reqLen := tritonBody(t, "inputs", binTensor{name: "input0", datatype: "FP32", shape: []int{2, 4},
			raw: le32(6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6)})
		resp, respLen := tritonBody(t, "outputs",
			binTensor{name: "output0", datatype: "INT64", shape: []int{2}, raw: le64(1, -2)},
			binTensor{name: "probabilities", datatype: "FP32", shape: []int{2, 2}, raw: le32(0.25, 0.75, 0.5, 0.5)},
			binTensor{name: "label", datatype: "BYTES", shape: []int{2, 1}, raw: bytesElems("versicolor", "setosa")})
		rows := decodeOK(t, spec, binExchange(req, reqLen, resp, respLen))
		f32 := func(v float32) float64 { return float64(v) }
		assert.Equal(t, []Row{
			{Features: fs(n("sepal_length", f32(6.8)), n("sepal_width", f32(2.8)), n("petal_length", f32(4.8)), n("petal_width", f32(1.4))),
				Predictions: fs(n("output0", 1), n("probabilities[0]", 0.25), n("probabilities[1]", 0.75), c("label", "versicolor"))},
			{Features: fs(n("sepal_length", f32(6.0)), n("sepal_width", f32(3.4)), n("petal_length", f32(4.5)), n("petal_width", f32(1.6))),
				Predictions: fs(n("output0", -2), n("probabilities[0]", 0.5), n("probabilities[1]", 0.5), c("label", "setosa"))},
		}, rows)
	})

	t.Run("BYTES and JSON tensors mixed, JSON-only response", func(t *testing.T) {
		req, reqLen := tritonBody(t, "inputs",
			binTensor{name: "text", datatype: "BYTES", shape: []int{2, 1}, raw: bytesElems("héllo", "")},
			binTensor{name: "n", datatype: "INT64", shape: []int{2}, data: []int{3, 4}},
			binTensor{name: "w", datatype: "INT64", shape: []int{2}, raw: le64(5, 6)})
		resp := []byte(`{"outputs": [{"name": "label", "shape": [2], "datatype": "BYTES", "data": ["pos", "neg"]}]}`)
		rows := decodeOK(t, spec, binExchange(req, reqLen, resp, -1))
		assert.Equal(t, []Row{
			{Features: fs(c("text", "héllo"), n("n", 3), n("w", 5)), Predictions: fs(c("prediction", "pos"))},
			{Features: fs(c("text", ""), n("n", 4), n("w", 6)), Predictions: fs(c("prediction", "neg"))},
		}, rows)
	})

	t.Run("every datatype; NaN and infinities skipped", func(t *testing.T) {
		u16 := func(vs ...uint16) []byte {
			var b []byte
			for _, v := range vs {
				b = binary.LittleEndian.AppendUint16(b, v)
			}
			return b
		}
		req, reqLen := tritonBody(t, "inputs",
			binTensor{name: "b", datatype: "BOOL", shape: []int{1, 2}, raw: []byte{1, 0}},
			binTensor{name: "i8", datatype: "INT8", shape: []int{1, 2}, raw: []byte{0xff, 7}},
			binTensor{name: "u8", datatype: "UINT8", shape: []int{1, 1}, raw: []byte{0xff}},
			binTensor{name: "i16", datatype: "INT16", shape: []int{1, 1}, raw: u16(0xfffe)},
			binTensor{name: "u16", datatype: "UINT16", shape: []int{1, 1}, raw: u16(0xfffe)},
			binTensor{name: "h", datatype: "FP16", shape: []int{1, 4}, raw: u16(0x3c00, 0xc000, 0x0001, 0x7c00)},
			binTensor{name: "bf", datatype: "BF16", shape: []int{1, 2}, raw: u16(0x3fc0, 0x7fc0)},
			binTensor{name: "i32", datatype: "INT32", shape: []int{1, 1}, raw: binary.LittleEndian.AppendUint32(nil, 0xffffffff)},
			binTensor{name: "u32", datatype: "UINT32", shape: []int{1, 1}, raw: binary.LittleEndian.AppendUint32(nil, 0xffffffff)},
			binTensor{name: "f32", datatype: "FP32", shape: []int{1, 2}, raw: le32(float32(math.NaN()), float32(math.Inf(1)))},
			binTensor{name: "u64", datatype: "UINT64", shape: []int{1, 1}, raw: le64(-1)},
			binTensor{name: "f64", datatype: "FP64", shape: []int{1, 1}, raw: binary.LittleEndian.AppendUint64(nil, math.Float64bits(-2.5))},
		)
		rows := decodeOK(t, spec, binExchange(req, reqLen, nil, -1))
		assert.Equal(t, []Row{{Features: fs(
			c("b[0]", "true"), c("b[1]", "false"),
			n("i8[0]", -1), n("i8[1]", 7), n("u8", 255), n("i16", -2), n("u16", 65534),
			n("h[0]", 1), n("h[1]", -2), n("h[2]", math.Ldexp(1, -24)),
			n("bf[0]", 1.5),
			n("i32", -1), n("u32", 4294967295), n("u64", 18446744073709551615), n("f64", -2.5),
		)}}, rows)
	})
}

func TestTritonBinaryMalformed(t *testing.T) {
	spec := &Spec{Protocol: configs.ProtocolKServeV2}
	good, goodLen := tritonBody(t, "inputs", binTensor{name: "x", datatype: "FP32", shape: []int{1, 2}, raw: le32(1, 2)})
	resp := []byte(`{"outputs": [{"name": "y", "shape": [1], "datatype": "FP32", "data": [1]}]}`)
	decodeOK(t, spec, binExchange(good, goodLen, resp, -1))

	header := func(key string, size int, datatype string, shape ...int) []byte {
		h, _ := json.Marshal(map[string]any{key: []map[string]any{{"name": "x", "datatype": datatype, "shape": shape,
			"parameters": map[string]any{"binary_data_size": size}}}})
		return h
	}
	tests := []struct {
		name    string
		body    []byte
		hdr     int
		resp    bool
		respHdr int
	}{
		{"header length beyond the body", good, len(good) + 1, false, -1},
		{"header length cuts the JSON", good, goodLen - 3, false, -1},
		{"header length zero", good, 0, false, -1},
		{"binary_data_size beyond the body", append(header("inputs", 16, "FP32", 1, 4), le32(1, 2)...), len(header("inputs", 16, "FP32", 1, 4)), false, -1},
		{"size not a multiple of the element", append(header("inputs", 6, "FP32", 1, 2), make([]byte, 6)...), len(header("inputs", 6, "FP32", 1, 2)), false, -1},
		{"size does not match the shape", append(header("inputs", 8, "FP32", 1, 4), le32(1, 2)...), len(header("inputs", 8, "FP32", 1, 4)), false, -1},
		{"bytes left over", append(good, 0, 0, 0, 0), goodLen, false, -1},
		{"negative binary_data_size", append(header("inputs", -4, "FP32", 1), le32(1)...), len(header("inputs", -4, "FP32", 1)), false, -1},
		{"unknown datatype", append(header("inputs", 4, "COMPLEX64", 1), le32(1)...), len(header("inputs", 4, "COMPLEX64", 1)), false, -1},
		{"BYTES length beyond the tensor", append(header("inputs", 6, "BYTES", 1), 9, 0, 0, 0, 'a', 'b'), len(header("inputs", 6, "BYTES", 1)), false, -1},
		{"BYTES count above the shape", append(header("inputs", 10, "BYTES", 1), bytesElems("a", "b")...), len(header("inputs", 10, "BYTES", 1)), false, -1},
		{"BYTES count below the shape", append(header("inputs", 5, "BYTES", 2), bytesElems("a")...), len(header("inputs", 5, "BYTES", 2)), false, -1},
		{"BYTES truncated length prefix", append(header("inputs", 7, "BYTES", 2), 1, 0, 0, 0, 'a', 0, 0), len(header("inputs", 7, "BYTES", 2)), false, -1},
		{"response header beyond the body", resp, -1, true, len(resp) + 10},
		{"response size mismatch", append(header("outputs", 8, "INT64", 2), le64(1)...), -1, true, len(header("outputs", 8, "INT64", 2))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := binExchange(tc.body, tc.hdr, resp, -1)
			if tc.resp {
				in = binExchange(good, goodLen, tc.body, tc.respHdr)
			}
			decodeBad(t, spec, in)
		})
	}
}
