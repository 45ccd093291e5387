package decode

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vaneproxy/vane/configs"
)

var iris = []string{"sepal_length", "sepal_width", "petal_length", "petal_width"}

func TestKServeV1(t *testing.T) {
	tests := []struct {
		name      string
		features  []string
		req, resp string
		want      []Row
	}{
		{"list rows named f<j>",
			nil,
			`{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}`,
			`{"model_version":"v2","predictions":[2,2],"probabilities":[[0.091,0.364,0.545],[0.091,0.364,0.545]]}`,
			[]Row{
				{Features: fs(n("f0", 6.8), n("f1", 2.8), n("f2", 4.8), n("f3", 1.4)), Predictions: fs(n("prediction", 2))},
				{Features: fs(n("f0", 6.0), n("f1", 3.4), n("f2", 4.5), n("f3", 1.6)), Predictions: fs(n("prediction", 2))},
			}},
		{"list rows named by spec.Features",
			iris,
			`{"instances": [[6.8, 2.8, 4.8, 1.4]]}`, `{"predictions": [1]}`,
			[]Row{{Features: fs(n("sepal_length", 6.8), n("sepal_width", 2.8), n("petal_length", 4.8), n("petal_width", 1.4)),
				Predictions: fs(n("prediction", 1))}}},
		{"columns past spec.Features are f<j>",
			[]string{"a", "b"},
			`{"instances": [[1, 2, 3]]}`, `{"predictions": [0]}`,
			[]Row{{Features: fs(n("a", 1), n("b", 2), n("f2", 3)), Predictions: fs(n("prediction", 0))}}},
		{"object rows, categorical strings and bools",
			iris,
			`{"instances": [{"sepal_length": 5.1, "color": "blue", "wild": true}, {"sepal_length": 6.3, "color": "red", "wild": false}]}`,
			`{"predictions": ["setosa", "virginica"]}`,
			[]Row{
				{Features: fs(n("sepal_length", 5.1), c("color", "blue"), c("wild", "true")), Predictions: fs(c("prediction", "setosa"))},
				{Features: fs(n("sepal_length", 6.3), c("color", "red"), c("wild", "false")), Predictions: fs(c("prediction", "virginica"))},
			}},
		{"b64 values are skipped, keeping column indices",
			nil,
			`{"instances": [{"image": {"b64": "aGVsbG8="}, "x": 1}, [{"b64": "aGk="}, 2], {"b64": "aGk="}]}`,
			`{"predictions": [0, 1, 2]}`,
			[]Row{
				{Features: fs(n("x", 1)), Predictions: fs(n("prediction", 0))},
				{Features: fs(n("f1", 2)), Predictions: fs(n("prediction", 1))},
				{Predictions: fs(n("prediction", 2))},
			}},
		{"scalar instances are column 0",
			nil,
			`{"instances": ["the quick fox", "jumps"]}`, `{"predictions": [0.25, 0.75]}`,
			[]Row{
				{Features: fs(c("f0", "the quick fox")), Predictions: fs(n("prediction", 0.25))},
				{Features: fs(c("f0", "jumps")), Predictions: fs(n("prediction", 0.75))},
			}},
		{"nested list instances flatten row-major",
			nil,
			`{"instances": [[[1, 2], [3, 4]]]}`, `{"predictions": [[0.1, 0.9]]}`,
			[]Row{{Features: fs(n("f0", 1), n("f1", 2), n("f2", 3), n("f3", 4)),
				Predictions: fs(n("prediction[0]", 0.1), n("prediction[1]", 0.9))}}},
		{"list members of object rows are name[k]",
			nil,
			`{"instances": [{"pixels": [0, 255], "tag": "a"}]}`, `{"predictions": [{"classes": 3, "scores": [0.2, 0.8]}]}`,
			[]Row{{Features: fs(n("pixels[0]", 0), n("pixels[1]", 255), c("tag", "a")),
				Predictions: fs(n("prediction.classes", 3), n("prediction.scores[0]", 0.2), n("prediction.scores[1]", 0.8))}}},
		{"null, nested objects and out-of-range numbers are skipped",
			nil,
			`{"instances": [[1e999, null, 3, {"k": 1}, -0.5e-3]]}`, `{"predictions": [null]}`,
			[]Row{{Features: fs(n("f2", 3), n("f4", -0.0005))}}},
		{"more instances than predictions",
			nil,
			`{"instances": [[1], [2], [3]]}`, `{"predictions": [7, 8]}`,
			[]Row{
				{Features: fs(n("f0", 1)), Predictions: fs(n("prediction", 7))},
				{Features: fs(n("f0", 2)), Predictions: fs(n("prediction", 8))},
				{Features: fs(n("f0", 3))},
			}},
		{"more predictions than instances",
			nil,
			`{"instances": [[1]]}`, `{"predictions": [7, 8, 9]}`,
			[]Row{{Features: fs(n("f0", 1)), Predictions: fs(n("prediction", 7))}}},
		{"escaped keys, unicode and whitespace",
			nil,
			" \n{\"\\u0069nstances\" : [ {\"s\\u00e9pal\" : \"caf\\u00e9 \\\"x\\\"\" , \"é\": 1} ] }\r\n",
			`{"predictions":[1]}`,
			[]Row{{Features: fs(c("sépal", `café "x"`), n("é", 1)), Predictions: fs(n("prediction", 1))}}},
		{"empty instances",
			nil,
			`{"instances": []}`, `{"predictions": [1]}`,
			nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := &Spec{Protocol: configs.ProtocolKServeV1, Features: tc.features}
			assert.Equal(t, tc.want, decodeOK(t, spec, exchange(tc.req, tc.resp)))
		})
	}
}

func TestKServeV1Malformed(t *testing.T) {
	tests := []struct{ name, req, resp string }{
		{"truncated request", `{"instances": [[1, 2, 3, 4]]`, `{"predictions": [1]}`},
		{"trailing garbage", `{"instances": [[1]]} x`, `{"predictions": [1]}`},
		{"request not an object", `[[1, 2, 3, 4]]`, `{"predictions": [1]}`},
		{"request not JSON", `sepal_length=1`, `{"predictions": [1]}`},
		{"no instances", `{"rows": [[1, 2]]}`, `{"predictions": [1]}`},
		{"instances not a list", `{"instances": {"a": 1}}`, `{"predictions": [1]}`},
		{"instances and inputs", `{"instances": [[1]], "inputs": [[1]]}`, `{"predictions": [1]}`},
		{"inputs a scalar", `{"inputs": 3}`, `{"outputs": [1]}`},
		{"truncated response", `{"instances": [[1]]}`, `{"predictions": [1`},
		{"response without predictions", `{"instances": [[1]]}`, `{"error": "secret-token-123"}`},
		{"predictions not a list", `{"instances": [[1]]}`, `{"predictions": "secret-token-123"}`},
		{"response a list", `{"instances": [[1]]}`, `[1]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			decodeBad(t, &Spec{Protocol: configs.ProtocolKServeV1}, exchange(tc.req, tc.resp))
		})
	}
}
