package decode

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vaneproxy/vane/configs"
)

func TestMLflow(t *testing.T) {
	ab := func(a, b float64) []Field { return fs(n("a", a), n("b", b)) }
	p := func(v float64) []Field { return fs(n("prediction", v)) }
	tests := []struct {
		name      string
		features  []string
		ct        string
		req, resp string
		want      []Row
	}{
		{"dataframe_split", nil, "application/json",
			`{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}`, `{"predictions": [0, 1]}`,
			[]Row{{Features: ab(1, 2), Predictions: p(0)}, {Features: ab(3, 4), Predictions: p(1)}}},
		{"dataframe_split with index, params, tensor cells, numeric labels", nil, "application/json; charset=utf-8",
			`{"params": {"temperature": 0.1}, "dataframe_split": {"index": [7], "columns": ["emb", 0], "data": [[[0.5, 0.25], "x"]]}}`,
			`[3]`,
			[]Row{{Features: fs(n("emb[0]", 0.5), n("emb[1]", 0.25), c("0", "x")), Predictions: p(3)}}},
		{"dataframe_split without columns uses spec.Features", []string{"a"}, "",
			`{"dataframe_split": {"data": [[1, 2]]}}`, `{"predictions": [0]}`,
			[]Row{{Features: fs(n("a", 1), n("f1", 2)), Predictions: p(0)}}},
		{"dataframe_records", nil, "application/json",
			`{"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}`, `{"predictions": [0, 1]}`,
			[]Row{{Features: ab(1, 2), Predictions: p(0)}, {Features: ab(3, 4), Predictions: p(1)}}},
		{"instances", []string{"a", "b"}, "application/json",
			`{"instances": [[1, 2], [3, 4]]}`, `{"predictions": [0, 1]}`,
			[]Row{{Features: ab(1, 2), Predictions: p(0)}, {Features: ab(3, 4), Predictions: p(1)}}},
		{"inputs as columns", nil, "application/json",
			`{"inputs": {"a": [1, 3], "b": [2, 4]}, "params": {"k": 1}}`, `{"predictions": [0, 1]}`,
			[]Row{{Features: ab(1, 2), Predictions: p(0)}, {Features: ab(3, 4), Predictions: p(1)}}},
		{"inputs as a list", []string{"a", "b"}, "application/json",
			`{"inputs": [[1, 2]]}`, `{"predictions": [0]}`,
			[]Row{{Features: ab(1, 2), Predictions: p(0)}}},
		{"predictions by column", nil, "application/json",
			`{"inputs": {"a": [1, 3], "b": [2, 4]}}`, `{"predictions": {"label": ["x", "y"], "score": [0.5, 0.75]}}`,
			[]Row{
				{Features: ab(1, 2), Predictions: fs(c("prediction.label", "x"), n("prediction.score", 0.5))},
				{Features: ab(3, 4), Predictions: fs(c("prediction.label", "y"), n("prediction.score", 0.75))},
			}},
		{"predictions as records", nil, "application/json",
			`{"dataframe_records": [{"a": 1, "b": 2}]}`, `{"predictions": [{"label": "x", "probs": [0.1, 0.9]}]}`,
			[]Row{{Features: ab(1, 2), Predictions: fs(c("prediction.label", "x"), n("prediction.probs[0]", 0.1), n("prediction.probs[1]", 0.9))}}},
		{"csv", nil, "text/csv",
			"a,b\n1,2\n3,4\n", `{"predictions": [0, 1]}`,
			[]Row{{Features: ab(1, 2), Predictions: p(0)}, {Features: ab(3, 4), Predictions: p(1)}}},
		{"csv toy body", nil, "text/csv; charset=utf-8",
			"sepal_length,sepal_width,petal_length,petal_width\n6.8,2.8,4.8,1.4\n",
			`{"model_version":"v2","predictions":[2],"probabilities":[[0.091,0.364,0.545]]}`,
			[]Row{{Features: fs(n("sepal_length", 6.8), n("sepal_width", 2.8), n("petal_length", 4.8), n("petal_width", 1.4)), Predictions: p(2)}}},
		{"csv: BOM, CRLF, quotes, spaces, categories, empty cells, NaN, ragged rows", []string{"x0", "x1", "x2"}, "TEXT/CSV",
			"\ufeff a , \"b, quoted\",\r\n1.5, \"red, dark\", 7\r\n,NaN,inf,9\r\n 2 ,1e999\r\n",
			`{"predictions": [1, 2, 3]}`,
			[]Row{
				{Features: fs(n("a", 1.5), c("b, quoted", "red, dark"), n("x2", 7)), Predictions: p(1)},
				{Features: fs(n("f3", 9)), Predictions: p(2)},
				{Features: fs(n("a", 2)), Predictions: p(3)},
			}},
		{"csv header only", nil, "text/csv", "a,b\n", `{"predictions": []}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := exchange(tc.req, tc.resp)
			in.ReqContentType = tc.ct
			spec := &Spec{Protocol: configs.ProtocolMLflow, Features: tc.features}
			assert.Equal(t, tc.want, decodeOK(t, spec, in))
		})
	}
}

func TestMLflowMalformed(t *testing.T) {
	tests := []struct{ name, ct, req, resp string }{
		{"two forms", "", `{"instances": [[1]], "inputs": [[1]]}`, `{"predictions": [1]}`},
		{"no form", "", `{"params": {"k": 1}}`, `{"predictions": [1]}`},
		{"truncated", "", `{"dataframe_split": {"columns": ["a"], "data": [[1]`, `{"predictions": [1]}`},
		{"split without data", "", `{"dataframe_split": {"columns": ["a"]}}`, `{"predictions": [1]}`},
		{"split not an object", "", `{"dataframe_split": [[1]]}`, `{"predictions": [1]}`},
		{"split row not a list", "", `{"dataframe_split": {"data": [1]}}`, `{"predictions": [1]}`},
		{"split columns not a list", "", `{"dataframe_split": {"columns": "a", "data": [[1]]}}`, `{"predictions": [1]}`},
		{"records not a list", "", `{"dataframe_records": {"a": 1}}`, `{"predictions": [1]}`},
		{"csv bare quote", "text/csv", "a,b\n1,x\"secret-token-123\n", `{"predictions": [1]}`},
		{"csv unterminated quote", "text/csv", "a,b\n1,\"secret-token-123\n", `{"predictions": [1]}`},
		{"response without predictions", "", `{"instances": [[1]]}`, `{"outputs": [1]}`},
		{"response a scalar", "", `{"instances": [[1]]}`, `1`},
		{"response truncated", "", `{"instances": [[1]]}`, `{"predictions": [1,`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := exchange(tc.req, tc.resp)
			in.ReqContentType = tc.ct
			decodeBad(t, &Spec{Protocol: configs.ProtocolMLflow}, in)
		})
	}
}
