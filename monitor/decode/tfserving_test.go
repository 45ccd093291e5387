package decode

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vaneproxy/vane/configs"
)

func TestTFServing(t *testing.T) {
	tests := []struct {
		name      string
		features  []string
		req, resp string
		want      []Row
	}{
		{"columns: a 2-D column gives name[j]",
			nil,
			`{"inputs": {"x": [[1.0, 2.0], [5, 6]], "y": [3, 4]}}`, `{"outputs": [[0.1, 0.9], [0.6, 0.4]]}`,
			[]Row{
				{Features: fs(n("x[0]", 1), n("x[1]", 2), n("y", 3)), Predictions: fs(n("prediction[0]", 0.1), n("prediction[1]", 0.9))},
				{Features: fs(n("x[0]", 5), n("x[1]", 6), n("y", 4)), Predictions: fs(n("prediction[0]", 0.6), n("prediction[1]", 0.4))},
			}},
		{"columns: one per feature (toy model)",
			nil,
			`{"inputs": {"sepal_length": [6.8], "sepal_width": [2.8], "petal_length": [4.8], "petal_width": [1.4]}}`,
			`{"model_version":"v2","outputs":[2],"probabilities":[[0.091,0.364,0.545]]}`,
			[]Row{{Features: fs(n("sepal_length", 6.8), n("sepal_width", 2.8), n("petal_length", 4.8), n("petal_width", 1.4)),
				Predictions: fs(n("prediction", 2))}}},
		{"a single input of rows is named like list instances",
			iris,
			`{"signature_name": "serving_default", "inputs": {"x": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}}`, `{"outputs": [1, 2]}`,
			[]Row{
				{Features: fs(n("sepal_length", 6.8), n("sepal_width", 2.8), n("petal_length", 4.8), n("petal_width", 1.4)), Predictions: fs(n("prediction", 1))},
				{Features: fs(n("sepal_length", 6.0), n("sepal_width", 3.4), n("petal_length", 4.5), n("petal_width", 1.6)), Predictions: fs(n("prediction", 2))},
			}},
		{"a single 1-D input keeps its name",
			iris,
			`{"inputs": {"age": [30, 40]}}`, `{"outputs": [0, 1]}`,
			[]Row{
				{Features: fs(n("age", 30)), Predictions: fs(n("prediction", 0))},
				{Features: fs(n("age", 40)), Predictions: fs(n("prediction", 1))},
			}},
		{"ragged columns and a scalar applying to every row",
			nil,
			`{"inputs": {"a": [1, 2], "b": ["u"], "temperature": 0.7}}`, `{"outputs": {"classes": [1, 0], "scores": [[0.2, 0.8], [0.9, 0.1]]}}`,
			[]Row{
				{Features: fs(n("a", 1), c("b", "u"), n("temperature", 0.7)),
					Predictions: fs(n("prediction.classes", 1), n("prediction.scores[0]", 0.2), n("prediction.scores[1]", 0.8))},
				{Features: fs(n("a", 2), n("temperature", 0.7)),
					Predictions: fs(n("prediction.classes", 0), n("prediction.scores[0]", 0.9), n("prediction.scores[1]", 0.1))},
			}},
		{"only scalar inputs make one row",
			nil,
			`{"inputs": {"a": 1, "b": "x"}}`, `{"outputs": 0.5}`,
			[]Row{{Features: fs(n("a", 1), c("b", "x")), Predictions: fs(n("prediction", 0.5))}}},
		{"inputs as a list of rows",
			[]string{"a", "b"},
			`{"inputs": [[1, 2]]}`, `{"outputs": [[0.5]]}`,
			[]Row{{Features: fs(n("a", 1), n("b", 2)), Predictions: fs(n("prediction[0]", 0.5))}}},
		{"regress: examples with context",
			nil,
			`{"signature_name": "regress", "context": {"lang": "en"}, "examples": [{"age": 30, "tags": ["a", "b"]}, {"age": 41}]}`,
			`{"results": [3.5, 2.25]}`,
			[]Row{
				{Features: fs(c("lang", "en"), n("age", 30), c("tags[0]", "a"), c("tags[1]", "b")), Predictions: fs(n("prediction", 3.5))},
				{Features: fs(c("lang", "en"), n("age", 41)), Predictions: fs(n("prediction", 2.25))},
			}},
		{"classify: top label and scores by label",
			nil,
			`{"examples": [{"x": 1}, {"x": 2}]}`,
			`{"results": [[["cat", 0.3], ["dog", 0.7]], [["cat", 0.9], ["dog", 0.1]]]}`,
			[]Row{
				{Features: fs(n("x", 1)), Predictions: fs(n("prediction.cat", 0.3), n("prediction.dog", 0.7), c("prediction", "dog"))},
				{Features: fs(n("x", 2)), Predictions: fs(n("prediction.cat", 0.9), n("prediction.dog", 0.1), c("prediction", "cat"))},
			}},
		{"row format works too",
			nil,
			`{"instances": [{"a": 1}]}`, `{"predictions": [{"b": 2}]}`,
			[]Row{{Features: fs(n("a", 1)), Predictions: fs(n("prediction.b", 2))}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := &Spec{Protocol: configs.ProtocolTFServing, Features: tc.features}
			assert.Equal(t, tc.want, decodeOK(t, spec, exchange(tc.req, tc.resp)))
		})
	}
}

func TestTFServingMalformed(t *testing.T) {
	tests := []struct{ name, req, resp string }{
		{"examples not a list", `{"examples": {"x": 1}}`, `{"results": [1]}`},
		{"example not an object", `{"examples": [[1]]}`, `{"results": [1]}`},
		{"context not an object", `{"context": [1], "examples": [{"x": 1}]}`, `{"results": [1]}`},
		{"inputs and examples", `{"inputs": [[1]], "examples": [{"x": 1}]}`, `{"results": [1]}`},
		{"results not a list", `{"examples": [{"x": 1}]}`, `{"results": 1}`},
		{"truncated columns", `{"inputs": {"x": [[1, 2], [3`, `{"outputs": [1]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			decodeBad(t, &Spec{Protocol: configs.ProtocolTFServing}, exchange(tc.req, tc.resp))
		})
	}
}
