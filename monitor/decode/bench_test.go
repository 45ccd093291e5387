package decode

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// benchCase is one decoder on one payload.
type benchCase struct {
	name string
	spec *Spec
	in   Input
}

// irisRows are n iris-like rows.
func irisRows(n int) [][]float64 {
	rows := make([][]float64, n)
	for i := range rows {
		f := float64(i % 7)
		rows[i] = []float64{5.1 + f/10, 3.5 - f/10, 1.4 + f/2, 0.2 + f/5}
	}
	return rows
}

func mustJSON(tb testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(tb, err)
	return b
}

// benchCases builds every decoder's payload with n rows.
func benchCases(tb testing.TB, n int) []benchCase {
	rows := irisRows(n)
	classes, probs, flat, flatProbs := make([]int, n), make([][]float64, n), []float64{}, []float64{}
	records := make([]map[string]float64, n)
	cols := map[string][]float64{}
	var csv strings.Builder
	csv.WriteString(strings.Join(iris, ",") + "\n")
	for i, r := range rows {
		classes[i] = i % 3
		probs[i] = []float64{0.091, 0.364, 0.545}
		flat = append(flat, r...)
		flatProbs = append(flatProbs, probs[i]...)
		records[i] = map[string]float64{}
		for j, name := range iris {
			records[i][name] = r[j]
			cols[name] = append(cols[name], r[j])
		}
		fmt.Fprintf(&csv, "%g,%g,%g,%g\n", r[0], r[1], r[2], r[3])
	}
	v1Resp := mustJSON(tb, map[string]any{"predictions": classes, "model_version": "v2"})
	v2Req := mustJSON(tb, map[string]any{"id": "42", "inputs": []map[string]any{
		{"name": "input0", "shape": []int{n, 4}, "datatype": "FP32", "data": flat}}})
	v2Resp := mustJSON(tb, map[string]any{"model_name": "iris", "outputs": []map[string]any{
		{"name": "output0", "shape": []int{n}, "datatype": "INT64", "data": classes},
		{"name": "probabilities", "shape": []int{n, 3}, "datatype": "FP32", "data": flatProbs}}})
	f32 := make([]float32, len(flat))
	for i, v := range flat {
		f32[i] = float32(v)
	}
	c64 := make([]int64, n)
	for i, c := range classes {
		c64[i] = int64(c)
	}
	binReq, binReqLen := tritonBody(tb, "inputs", binTensor{name: "input0", datatype: "FP32", shape: []int{n, 4}, raw: le32(f32...)})
	binResp, binRespLen := tritonBody(tb, "outputs", binTensor{name: "output0", datatype: "INT64", shape: []int{n}, raw: le64(c64...)})
	var stream strings.Builder
	for i := range n {
		fmt.Fprintf(&stream, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"iris-v2\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word%d \"},\"finish_reason\":null}]}\n\n", i)
	}
	stream.WriteString(`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n")
	stream.WriteString(`data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":` + strconv.Itoa(n) + "}}\n\ndata: [DONE]\n\n")

	v1 := &Spec{Protocol: configs.ProtocolKServeV1, Features: iris}
	ex := func(req, resp []byte) Input {
		return Input{ReqBody: req, RespBody: resp, Status: 200, InferenceHeaderLen: -1, RespInferenceHeaderLen: -1}
	}
	csvIn := ex([]byte(csv.String()), v1Resp)
	csvIn.ReqContentType = "text/csv"
	binIn := ex(binReq, binResp)
	binIn.InferenceHeaderLen, binIn.RespInferenceHeaderLen = binReqLen, binRespLen
	chat := ex([]byte(`{"model": "iris", "stream": true, "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]}`), []byte(stream.String()))
	chat.RespContentType, chat.TTFB, chat.Latency = "text/event-stream", 20e6, 300e6
	return []benchCase{
		{"kserve-v1/lists", v1, ex(mustJSON(tb, map[string]any{"instances": rows}), v1Resp)},
		{"kserve-v1/objects", v1, ex(mustJSON(tb, map[string]any{"instances": records}), v1Resp)},
		{"tfserving/columns", &Spec{Protocol: configs.ProtocolTFServing}, ex(mustJSON(tb, map[string]any{"inputs": cols}),
			mustJSON(tb, map[string]any{"outputs": probs}))},
		{"kserve-v2/json", &Spec{Protocol: configs.ProtocolKServeV2}, ex(v2Req, v2Resp)},
		{"kserve-v2/binary", &Spec{Protocol: configs.ProtocolKServeV2, Features: iris}, binIn},
		{"mlflow/split", &Spec{Protocol: configs.ProtocolMLflow}, ex(mustJSON(tb, map[string]any{
			"dataframe_split": map[string]any{"columns": iris, "data": rows}}), v1Resp)},
		{"mlflow/csv", &Spec{Protocol: configs.ProtocolMLflow}, csvIn},
		{"openai/chat-stream", &Spec{Protocol: configs.ProtocolOpenAI}, chat},
		{"raw", &Spec{Protocol: configs.ProtocolRaw, Paths: map[string]string{"a": "instances.0.0", "b": "instances." + strconv.Itoa(n-1) + ".3"},
			PredictionPath: "predictions.0"}, ex(mustJSON(tb, map[string]any{"instances": rows}), v1Resp)},
	}
}

// BenchmarkDecode decodes each protocol's payload of 1 and 32 rows (for
// openai, a stream of 1 or 32 chunks; raw reads two values of the body),
// with one Decoder and reusing dst, as a monitor worker does.
func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{1, 32} {
		for _, bc := range benchCases(b, n) {
			b.Run(fmt.Sprintf("%s/rows=%d", bc.name, n), func(b *testing.B) {
				var d Decoder
				rows, err := d.Decode(nil, bc.spec, &bc.in)
				require.NoError(b, err)
				require.NotEmpty(b, rows)
				b.SetBytes(int64(len(bc.in.ReqBody) + len(bc.in.RespBody)))
				b.ReportAllocs()
				for b.Loop() {
					rows, _ = d.Decode(rows[:0], bc.spec, &bc.in)
				}
			})
		}
	}
}

// TestBenchCases checks that the benchmark payloads decode to what they
// should, so that the figures measure real work.
func TestBenchCases(t *testing.T) {
	for _, n := range []int{1, 32} {
		for _, bc := range benchCases(t, n) {
			rows, err := Decode(nil, bc.spec, &bc.in)
			require.NoError(t, err, bc.name)
			want := n
			if bc.name == "openai/chat-stream" || bc.name == "raw" {
				want = 1
			}
			require.Len(t, rows, want, bc.name)
			require.NotEmpty(t, rows[0].Predictions, bc.name)
			if bc.name != "openai/chat-stream" {
				require.NotEmpty(t, rows[0].Features, bc.name)
			}
		}
	}
}
