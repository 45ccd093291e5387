package decode

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// Fuzz targets, one per decoder family. Each checks that Decode never
// panics nor hangs, fails only with ErrMalformed and leaves dst alone when
// it does, quotes no payload in its errors, produces no NaN, infinity or
// empty row, and is deterministic.

// fuzzDecode runs the checks shared by all targets.
func fuzzDecode(t *testing.T, spec *Spec, in *Input) {
	dst := []Row{{Features: fs(n("keep", 1))}}
	rows, err := Decode(dst, spec, in)
	if err != nil {
		require.ErrorIs(t, err, ErrMalformed)
		require.Equal(t, dst, rows)
		msg := err.Error()
		require.Less(t, len(msg), 200, msg)
		for _, b := range [][]byte{in.ReqBody, in.RespBody} {
			for i := 0; i+24 <= len(b); i += 8 {
				if bytes.Contains([]byte(msg), b[i:i+24]) {
					t.Fatalf("error %q quotes the payload", msg)
				}
			}
		}
		return
	}
	require.Equal(t, dst[0], rows[0])
	checkRows(t, rows[1:])
	again, err := Decode(nil, spec, in)
	require.NoError(t, err)
	if len(rows) > 1 {
		assert.Equal(t, rows[1:], again)
	} else {
		assert.Empty(t, again)
	}
}

// fuzzJSON is the target body of the JSON-only families.
func fuzzJSON(f *testing.F, spec *Spec, seeds [][2]string) {
	for _, s := range seeds {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, req, resp []byte) {
		in := Input{ReqBody: req, RespBody: resp, Status: 200, InferenceHeaderLen: -1, RespInferenceHeaderLen: -1}
		fuzzDecode(t, spec, &in)
	})
}

func FuzzKServeV1(f *testing.F) {
	fuzzJSON(f, &Spec{Protocol: configs.ProtocolKServeV1, Features: []string{"a", "b"}}, [][2]string{
		{`{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}`, `{"predictions": [1, 1]}`},
		{`{"instances": [{"a": 1, "img": {"b64": "aGk="}, "t": [1, [2, 3]]}, "s", true, null]}`, `{"predictions": [{"x": [0.1, 0.9], "y": "l"}, [1, 2], 3]}`},
		{`{"\u0069nstances": [["\u00e9\"", 1e999, -0]]}`, `{"predictions": [null]}`},
		{`{"instances": {"a": 1}}`, `[1]`},
	})
}

func FuzzTFServing(f *testing.F) {
	fuzzJSON(f, &Spec{Protocol: configs.ProtocolTFServing}, [][2]string{
		{`{"inputs": {"x": [[1.0, 2.0]], "y": [3], "z": 0.5}}`, `{"outputs": [[0.1, 0.9]]}`},
		{`{"inputs": {"x": [[1, 2], [3, 4]]}}`, `{"outputs": {"classes": [1, 0], "scores": [[0.2, 0.8], [0.9, 0.1]]}}`},
		{`{"inputs": [[1, 2]]}`, `{"outputs": 3}`},
		{`{"context": {"lang": "en"}, "examples": [{"age": 30, "tags": ["a"]}]}`, `{"results": [[["cat", 0.3], ["dog", 0.7]]]}`},
		{`{"examples": [{"x": 1}]}`, `{"results": [2.5]}`},
	})
}

func FuzzKServeV2(f *testing.F) {
	fuzzJSON(f, &Spec{Protocol: configs.ProtocolKServeV2, Features: []string{"a", "b"}}, [][2]string{
		{v2IrisReq, v2IrisResp},
		{`{"inputs": [{"name": "a", "shape": [2], "datatype": "INT32", "data": [30, 41]}, {"name": "c", "shape": [2, 1], "datatype": "BYTES", "data": [["x"], ["y"]]}]}`,
			`{"outputs": [{"name": "s", "shape": [2, 1], "datatype": "FP32", "data": [0.5, null]}]}`},
		{`{"inputs": [{"name": "x", "shape": [0, 4], "datatype": "FP32", "data": []}]}`, `{"outputs": [{"name": "y", "shape": [], "data": 1}]}`},
		{`{"inputs": [{"name": "x", "shape": [1], "datatype": "BOOL", "data": [true], "parameters": {"binary_data_size": 0}}]}`, `{}`},
	})
}

func FuzzTritonBinary(f *testing.F) {
	req, reqLen := tritonBody(f, "inputs",
		binTensor{name: "x", datatype: "FP32", shape: []int{2, 2}, raw: le32(1, 2, 3, 4)},
		binTensor{name: "t", datatype: "BYTES", shape: []int{2}, raw: bytesElems("ab", "c")},
		binTensor{name: "j", datatype: "INT64", shape: []int{2}, data: []int{1, 2}})
	resp, respLen := tritonBody(f, "outputs",
		binTensor{name: "y", datatype: "INT64", shape: []int{2}, raw: le64(1, 0)},
		binTensor{name: "h", datatype: "FP16", shape: []int{2, 1}, raw: []byte{0, 0x3c, 0, 0x7c}})
	f.Add(req, reqLen, resp, respLen)
	f.Add(req, reqLen, []byte(`{"outputs": [{"name": "y", "shape": [2], "datatype": "BOOL", "data": [true, false]}]}`), -1)
	f.Add(req, len(req)+5, resp, 3)
	f.Fuzz(func(t *testing.T, req []byte, reqLen int, resp []byte, respLen int) {
		in := Input{ReqBody: req, RespBody: resp, Status: 200, InferenceHeaderLen: reqLen, RespInferenceHeaderLen: respLen}
		fuzzDecode(t, &Spec{Protocol: configs.ProtocolKServeV2}, &in)
	})
}

func FuzzMLflow(f *testing.F) {
	fuzzJSON(f, &Spec{Protocol: configs.ProtocolMLflow}, [][2]string{
		{`{"dataframe_split": {"index": [0], "columns": ["a", 0], "data": [[1, [2, 3]]]}, "params": {}}`, `{"predictions": [0]}`},
		{`{"dataframe_records": [{"a": 1, "b": "x"}]}`, `[1]`},
		{`{"instances": [[1, 2]]}`, `{"predictions": {"c": [1], "d": [[0.5, 0.5]]}}`},
		{`{"inputs": {"a": [1, 3], "b": [2, 4]}}`, `{"predictions": [{"label": "x"}]}`},
	})
}

func FuzzMLflowCSV(f *testing.F) {
	for _, s := range [][2]string{
		{"a,b\n1,2\n3,4\n", `{"predictions": [0, 1]}`},
		{"\ufeff a ,\"b, q\"\r\n1.5, \"x\"\"y\", 7\r\n,NaN,inf\r\n", `[1, 2]`},
		{"a\n\"unterminated\n", `{"predictions": []}`},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, req, resp []byte) {
		in := Input{ReqBody: req, RespBody: resp, ReqContentType: "text/csv", Status: 200, InferenceHeaderLen: -1, RespInferenceHeaderLen: -1}
		fuzzDecode(t, &Spec{Protocol: configs.ProtocolMLflow, Features: []string{"x"}}, &in)
	})
}

func FuzzOpenAI(f *testing.F) {
	chat := `{"model": "iris", "stream": true, "messages": [{"role": "user", "content": [{"type": "text", "text": "one"}]}, {"role": "system", "content": "be brief"}]}`
	for _, s := range []struct {
		req, resp string
		stream    bool
	}{
		{chat, chatStream, true},
		{`{"prompt": ["a", "b"], "stream": true}`, completionStream, true},
		{`{"prompt": [1, 2]}`, `{"choices":[{"index":0,"text":"ok","finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":1}}`, false},
		{chat, "data: {\"choices\":[{\"index\":0,\ndata: \"text\":\"ab\"}]}\r\n\r\n: c\ndata:[DONE]", true},
	} {
		f.Add([]byte(s.req), []byte(s.resp), s.stream)
	}
	f.Fuzz(func(t *testing.T, req, resp []byte, stream bool) {
		in := Input{ReqBody: req, RespBody: resp, Status: 200, InferenceHeaderLen: -1, RespInferenceHeaderLen: -1, TTFB: 1, Latency: 2}
		if stream {
			in.RespContentType = "text/event-stream"
		}
		fuzzDecode(t, &Spec{Protocol: configs.ProtocolOpenAI}, &in)
	})
}

func FuzzRaw(f *testing.F) {
	f.Add([]byte(`{"inputs": [{"x": 1.5, "t": ["a"]}], "m": {"0": true}}`), []byte(`{"r": {"s": 0.25}}`), "inputs.0.x", "r.s")
	f.Add([]byte(`[[1, 2], {"a": null}]`), []byte(`"label"`), "0.1", "")
	f.Add([]byte(`{"a\u002eb": 1}`), []byte(`[]`), "m.0", "0")
	f.Fuzz(func(t *testing.T, req, resp []byte, path, predPath string) {
		in := Input{ReqBody: req, RespBody: resp, Status: 200, InferenceHeaderLen: -1, RespInferenceHeaderLen: -1}
		spec := &Spec{Protocol: configs.ProtocolRaw, Paths: map[string]string{"a": path, "b": "inputs.0"}, PredictionPath: predPath}
		fuzzDecode(t, spec, &in)
	})
}
