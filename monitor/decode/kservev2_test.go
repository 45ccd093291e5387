package decode

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vaneproxy/vane/configs"
)

// Bodies as the toy model and Triton send them.
const (
	v2IrisReq = `{"id": "42", "inputs": [{"name": "input0", "shape": [2, 4], "datatype": "FP32",
		"data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]}]}`
	v2IrisResp = `{"id":"42","model_name":"iris","model_version":"v2","outputs":[
		{"data":[2,2],"datatype":"INT64","name":"output0","shape":[2]},
		{"data":[0.091,0.364,0.545,0.091,0.364,0.545],"datatype":"FP32","name":"probabilities","shape":[2,3]}]}`
)

func TestKServeV2(t *testing.T) {
	irisRow := func(names []string, vals ...float64) []Field {
		var out []Field
		for j, v := range vals {
			out = append(out, n(names[j], v))
		}
		return out
	}
	in0 := []string{"input0[0]", "input0[1]", "input0[2]", "input0[3]"}
	probs := func(p ...float64) []Field {
		return fs(n("output0", 2), n("probabilities[0]", p[0]), n("probabilities[1]", p[1]), n("probabilities[2]", p[2]))
	}
	tests := []struct {
		name      string
		features  []string
		req, resp string
		want      []Row
	}{
		{"one [N,4] input and two outputs",
			nil, v2IrisReq, v2IrisResp,
			[]Row{
				{Features: irisRow(in0, 6.8, 2.8, 4.8, 1.4), Predictions: probs(0.091, 0.364, 0.545)},
				{Features: irisRow(in0, 6.0, 3.4, 4.5, 1.6), Predictions: probs(0.091, 0.364, 0.545)},
			}},
		{"columns named by spec.Features, nested data, single output",
			iris,
			`{"inputs": [{"name": "input0", "shape": [2, 4], "datatype": "FP64", "data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}]}`,
			`{"outputs": [{"name": "output0", "shape": [2], "datatype": "INT64", "data": [1, 2]}]}`,
			[]Row{
				{Features: irisRow(iris, 6.8, 2.8, 4.8, 1.4), Predictions: fs(n("prediction", 1))},
				{Features: irisRow(iris, 6.0, 3.4, 4.5, 1.6), Predictions: fs(n("prediction", 2))},
			}},
		{"shape [N,1,4], lower-case datatype, single [N,K] output",
			nil,
			`{"inputs": [{"name": "x", "shape": [1, 1, 4], "datatype": "fp32", "data": [1, 2, 3, 4]}]}`,
			`{"outputs": [{"name": "probs", "shape": [1, 3], "datatype": "FP32", "data": [[0.1, 0.2, 0.7]]}]}`,
			[]Row{{Features: fs(n("x[0]", 1), n("x[1]", 2), n("x[2]", 3), n("x[3]", 4)),
				Predictions: fs(n("prediction[0]", 0.1), n("prediction[1]", 0.2), n("prediction[2]", 0.7))}}},
		{"inputs of shape [N] and [N,1] are one feature each; BYTES and BOOL categorical",
			[]string{"ignored"},
			`{"inputs": [
				{"name": "age", "shape": [2], "datatype": "INT32", "data": [30, 41]},
				{"name": "city", "shape": [2, 1], "datatype": "BYTES", "data": [["Paris"], ["Lyon"]]},
				{"name": "member", "shape": [2, 1], "datatype": "BOOL", "data": [true, false]}],
			  "outputs": [{"name": "score"}]}`,
			`{"outputs": [{"name": "score", "shape": [2, 1], "datatype": "FP32", "data": [0.5, 0.25]}]}`,
			[]Row{
				{Features: fs(n("age", 30), c("city", "Paris"), c("member", "true")), Predictions: fs(n("prediction", 0.5))},
				{Features: fs(n("age", 41), c("city", "Lyon"), c("member", "false")), Predictions: fs(n("prediction", 0.25))},
			}},
		{"a single one-column input takes spec.Features[0], else its name",
			[]string{"sepal_length"},
			`{"inputs": [{"name": "input0", "shape": [1], "datatype": "FP32", "data": [5.1]}]}`,
			`{"outputs": [{"name": "a", "shape": [1], "datatype": "INT64", "data": [0]}, {"name": "b", "shape": [1, 2], "datatype": "FP32", "data": [0.5, 0.5]}]}`,
			[]Row{{Features: fs(n("sepal_length", 5.1)),
				Predictions: fs(n("a", 0), n("b[0]", 0.5), n("b[1]", 0.5))}}},
		{"inputs with different batches, null skipped",
			nil,
			`{"inputs": [{"name": "a", "shape": [2], "datatype": "FP32", "data": [1, null]}, {"name": "b", "shape": [1], "datatype": "FP32", "data": [3]}]}`,
			`{"outputs": [{"name": "y", "shape": [2], "datatype": "FP32", "data": [7, 8]}]}`,
			[]Row{
				{Features: fs(n("a", 1), n("b", 3)), Predictions: fs(n("prediction", 7))},
				{Predictions: fs(n("prediction", 8))},
			}},
		{"empty tensors",
			nil,
			`{"inputs": [{"name": "a", "shape": [0, 4], "datatype": "FP32", "data": []}, {"name": "b", "shape": [3, 0], "datatype": "FP32"}]}`,
			`{"outputs": [{"name": "y", "shape": [0], "datatype": "FP32", "data": []}]}`,
			nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := &Spec{Protocol: configs.ProtocolKServeV2, Features: tc.features}
			assert.Equal(t, tc.want, decodeOK(t, spec, exchange(tc.req, tc.resp)))
		})
	}
}

func TestKServeV2Malformed(t *testing.T) {
	ok := `{"outputs": [{"name": "y", "shape": [1], "datatype": "FP32", "data": [1]}]}`
	okReq := `{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}`
	tests := []struct{ name, req, resp string }{
		{"truncated", `{"inputs": [{"name": "x", "shape": [1], "data": [1]`, ok},
		{"not an object", `[1, 2]`, ok},
		{"no inputs", `{"id": "1"}`, ok},
		{"fewer data than shape", `{"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3]}]}`, ok},
		{"more data than shape", `{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2, 3]}]}`, ok},
		{"negative dimension", `{"inputs": [{"name": "x", "shape": [-1, 2], "datatype": "FP32", "data": [1, 2]}]}`, ok},
		{"huge shape", `{"inputs": [{"name": "x", "shape": [1000000, 1000000, 1000000], "datatype": "FP32", "data": [1]}]}`, ok},
		{"shape of strings", `{"inputs": [{"name": "x", "shape": ["secret-token-123"], "data": [1]}]}`, ok},
		{"data holds objects", `{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [{"secret": "token-123"}]}]}`, ok},
		{"no data", `{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}`, ok},
		{"binary_data_size without binary data", `{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 4}}]}`, ok},
		{"no outputs", okReq, `{"model_name": "iris"}`},
		{"output shape mismatch", okReq, `{"outputs": [{"name": "y", "shape": [2], "datatype": "FP32", "data": [1]}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			decodeBad(t, &Spec{Protocol: configs.ProtocolKServeV2}, exchange(tc.req, tc.resp))
		})
	}
}
