package toy

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// asObjects turns rows into instances keyed by feature name.
func asObjects(rows [][]float64) []map[string]float64 {
	out := make([]map[string]float64, len(rows))
	for i, row := range rows {
		out[i] = map[string]float64{}
		for j, f := range DefaultFeatures {
			out[i][f] = row[j]
		}
	}
	return out
}

// asColumns turns rows into one column per feature.
func asColumns(rows [][]float64) map[string][]float64 {
	out := map[string][]float64{}
	for _, row := range rows {
		for j, f := range DefaultFeatures {
			out[f] = append(out[f], row[j])
		}
	}
	return out
}

func TestV1Predict(t *testing.T) {
	tests := []struct {
		name, path string
		body       any
		key        string // "predictions" or "outputs"
	}{
		{"instance lists", "/v1/models/iris:predict", map[string]any{"instances": allRows}, "predictions"},
		{"instance objects", "/v1/models/iris:predict", map[string]any{"instances": asObjects(allRows)}, "predictions"},
		{"with signature_name", "/v1/models/iris:predict",
			map[string]any{"signature_name": "serving_default", "instances": allRows}, "predictions"},
		{"versioned path", "/v1/models/iris/versions/{v}:predict", map[string]any{"instances": allRows}, "predictions"},
		{"columnar per feature", "/v1/models/iris:predict", map[string]any{"inputs": asColumns(allRows)}, "outputs"},
		{"columnar one tensor", "/v1/models/iris:predict", map[string]any{"inputs": map[string]any{"x": allRows}}, "outputs"},
		{"columnar list", "/v1/models/iris:predict", map[string]any{"inputs": allRows}, "outputs"},
	}
	for _, v := range versions {
		_, srv := serve(t, Options{Version: v.version})
		for _, tc := range tests {
			t.Run(v.version+"/"+tc.name, func(t *testing.T) {
				path := tc.path
				if path == "/v1/models/iris/versions/{v}:predict" {
					path = "/v1/models/iris/versions/" + v.version + ":predict"
				}
				r := post(t, srv, path, mustJSON(t, tc.body))
				require.Equal(t, http.StatusOK, r.status, r.raw)
				assert.Equal(t, v.version, r.header.Get(VersionHeader))
				assert.Equal(t, v.version, r.body["model_version"])
				assert.Equal(t, v.classes, ints(t, r.body[tc.key]))
				probs, hasProbs := r.body["probabilities"].([]any)
				if v.version == "v1" {
					assert.False(t, hasProbs, "v1 has no probabilities: %s", r.raw)
				} else {
					require.Len(t, probs, len(allRows))
					assert.Len(t, probs[0], 3)
				}
			})
		}
	}
}

func TestV1VersionsDiffer(t *testing.T) {
	_, v1 := serve(t, Options{Version: "v1"})
	_, v2 := serve(t, Options{Version: "v2"})
	body := `{"instances": [[6.0, 3.4, 4.5, 1.6]]}`
	a := post(t, v1, "/v1/models/iris:predict", body)
	b := post(t, v2, "/v1/models/iris:predict", body)
	assert.Equal(t, []int{Versicolor}, ints(t, a.body["predictions"]))
	assert.Equal(t, []int{Virginica}, ints(t, b.body["predictions"]))
}

func TestV1Status(t *testing.T) {
	_, srv := serve(t, Options{Version: "v2"})
	for _, path := range []string{"/v1/models/iris", "/v1/models/iris/versions/v2"} {
		t.Run(path, func(t *testing.T) {
			r := get(t, srv, path)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			assert.Equal(t, "iris", r.body["name"])
			assert.Equal(t, true, r.body["ready"])
			assert.Equal(t, "v2", r.body["model_version"])
			status := r.body["model_version_status"].([]any)[0].(map[string]any)
			assert.Equal(t, "AVAILABLE", status["state"])
		})
	}
	requireError(t, get(t, srv, "/v1/models/iris/versions/v1"), http.StatusNotFound)
}

func TestV1BadInput(t *testing.T) {
	m, srv := serve(t, Options{})
	tests := []struct{ name, body string }{
		{"empty body", ""},
		{"invalid JSON", `{"instances": [[1, 2, 3, 4]]`},
		{"trailing garbage", `{"instances": [[1, 2, 3, 4]]} x`},
		{"not an object", `[[1, 2, 3, 4]]`},
		{"neither key", `{"rows": [[1, 2, 3, 4]]}`},
		{"both keys", `{"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}`},
		{"no instances", `{"instances": []}`},
		{"instances not a list", `{"instances": {"a": 1}}`},
		{"short row", `{"instances": [[1, 2, 3]]}`},
		{"string feature", `{"instances": [[1, "2", 3, 4]]}`},
		{"null feature", `{"instances": [[1, null, 3, 4]]}`},
		{"missing feature", `{"instances": [{"sepal_length": 1, "sepal_width": 2, "petal_length": 3}]}`},
		{"b64 instance", `{"instances": [{"b64": "aGk="}]}`},
		{"columns ragged", `{"inputs": {"sepal_length": [1, 2], "sepal_width": [1], "petal_length": [1], "petal_width": [1]}}`},
		{"columns missing", `{"inputs": {"sepal_length": [1], "sepal_width": [1]}}`},
		{"inputs scalar", `{"inputs": 3}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, post(t, srv, "/v1/models/iris:predict", tc.body), http.StatusBadRequest)
		})
	}
	assert.Equal(t, int64(len(tests)), m.Requests(), "bad requests still count")
}
