package toy

import (
	"bytes"
	"encoding/binary"
	"math"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func flat(rows [][]float64) []float64 {
	var out []float64
	for _, row := range rows {
		out = append(out, row...)
	}
	return out
}

// featureInputs is one V2 input per feature, with shape [N] or [N, 1].
func featureInputs(rows [][]float64, shape1 bool) []map[string]any {
	cols := asColumns(rows)
	var out []map[string]any
	for _, f := range DefaultFeatures {
		shape := []int{len(rows)}
		if shape1 {
			shape = append(shape, 1)
		}
		out = append(out, map[string]any{"name": f, "shape": shape, "datatype": "FP64", "data": cols[f]})
	}
	return out
}

func TestV2Infer(t *testing.T) {
	n := len(allRows)
	tests := []struct {
		name, path string
		body       map[string]any
	}{
		{"flat data", "/v2/models/iris/infer", map[string]any{"id": "42", "inputs": []map[string]any{
			{"name": "input0", "shape": []int{n, 4}, "datatype": "FP32", "data": flat(allRows)}}}},
		{"nested data", "/v2/models/iris/infer", map[string]any{"id": "42", "inputs": []map[string]any{
			{"name": "input0", "shape": []int{n, 4}, "datatype": "FP32", "data": allRows}}}},
		{"versioned path, shape [N,1,4]", "/v2/models/iris/versions/{v}/infer", map[string]any{"id": "42", "inputs": []map[string]any{
			{"name": "input0", "shape": []int{n, 1, 4}, "datatype": "fp32", "data": flat(allRows)}}}},
		{"input per feature [N]", "/v2/models/iris/infer", map[string]any{"id": "42", "inputs": featureInputs(allRows, false)}},
		{"input per feature [N,1]", "/v2/models/iris/infer", map[string]any{"id": "42", "inputs": featureInputs(allRows, true)}},
	}
	for _, v := range versions {
		_, srv := serve(t, Options{Version: v.version})
		for _, tc := range tests {
			t.Run(v.version+"/"+tc.name, func(t *testing.T) {
				path := tc.path
				if path == "/v2/models/iris/versions/{v}/infer" {
					path = "/v2/models/iris/versions/" + v.version + "/infer"
				}
				r := post(t, srv, path, mustJSON(t, tc.body))
				require.Equal(t, http.StatusOK, r.status, r.raw)
				assert.Equal(t, "iris", r.body["model_name"])
				assert.Equal(t, v.version, r.body["model_version"])
				assert.Equal(t, v.version, r.header.Get(VersionHeader))
				assert.Equal(t, "42", r.body["id"])
				outputs := r.body["outputs"].([]any)
				out0 := outputs[0].(map[string]any)
				assert.Equal(t, "output0", out0["name"])
				assert.Equal(t, "INT64", out0["datatype"])
				assert.Equal(t, []int{n}, ints(t, out0["shape"]))
				assert.Equal(t, v.classes, ints(t, out0["data"]))
				if v.version == "v1" {
					assert.Len(t, outputs, 1)
				} else {
					require.Len(t, outputs, 2)
					probs := outputs[1].(map[string]any)
					assert.Equal(t, "probabilities", probs["name"])
					assert.Equal(t, []int{n, 3}, ints(t, probs["shape"]))
					assert.Len(t, probs["data"], 3*n)
				}
			})
		}
	}
}

func TestV2IDAndRequestedOutputs(t *testing.T) {
	_, srv := serve(t, Options{Version: "v2"})
	input := []map[string]any{{"name": "input0", "shape": []int{1, 4}, "datatype": "FP32", "data": rowBorder2}}

	r := post(t, srv, "/v2/models/iris/infer", mustJSON(t, map[string]any{"inputs": input}))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	assert.NotContains(t, r.body, "id", "no id in, no id out")

	r = post(t, srv, "/v2/models/iris/infer", mustJSON(t, map[string]any{
		"inputs": input, "outputs": []map[string]any{{"name": "probabilities"}}}))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	outputs := r.body["outputs"].([]any)
	require.Len(t, outputs, 1)
	assert.Equal(t, "probabilities", outputs[0].(map[string]any)["name"])
}

// binaryBody builds a Triton binary-extension request for FP32 rows.
func binaryBody(t *testing.T, rows [][]float64, extra int) (string, string) {
	t.Helper()
	var raw bytes.Buffer
	for _, x := range flat(rows) {
		require.NoError(t, binary.Write(&raw, binary.LittleEndian, math.Float32bits(float32(x))))
	}
	header := mustJSON(t, map[string]any{"inputs": []map[string]any{{
		"name": "input0", "shape": []int{len(rows), 4}, "datatype": "FP32",
		"parameters": map[string]any{"binary_data_size": raw.Len()}}}})
	raw.Write(make([]byte, extra))
	return header + raw.String(), strconv.Itoa(len(header))
}

func TestV2BinaryTensors(t *testing.T) {
	for _, v := range versions {
		t.Run(v.version, func(t *testing.T) {
			_, srv := serve(t, Options{Version: v.version})
			body, n := binaryBody(t, allRows, 0)
			r := call(t, srv, http.MethodPost, "/v2/models/iris/infer", "application/octet-stream", body, binaryHeader, n)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			out0 := r.body["outputs"].([]any)[0].(map[string]any)
			assert.Equal(t, v.classes, ints(t, out0["data"]))
		})
	}
	t.Run("left over bytes", func(t *testing.T) {
		_, srv := serve(t, Options{})
		body, n := binaryBody(t, allRows, 3)
		requireError(t, call(t, srv, http.MethodPost, "/v2/models/iris/infer", "", body, binaryHeader, n), http.StatusBadRequest)
	})
	t.Run("bad header", func(t *testing.T) {
		_, srv := serve(t, Options{})
		body, _ := binaryBody(t, allRows, 0)
		requireError(t, call(t, srv, http.MethodPost, "/v2/models/iris/infer", "", body, binaryHeader, "99999"), http.StatusBadRequest)
	})
}

func TestV2MetadataAndHealth(t *testing.T) {
	_, srv := serve(t, Options{Version: "v2"})
	r := get(t, srv, "/v2/models/iris")
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "iris", r.body["name"])
	assert.Equal(t, []any{"v2"}, r.body["versions"])
	assert.Len(t, r.body["outputs"], 2)
	assert.Equal(t, http.StatusOK, get(t, srv, "/v2/models/iris/versions/v2").status)
	assert.Equal(t, true, get(t, srv, "/v2/health/live").body["live"])
	assert.Equal(t, true, get(t, srv, "/v2/health/ready").body["ready"])
	assert.Equal(t, true, get(t, srv, "/v2/models/iris/ready").body["ready"])
	requireError(t, get(t, srv, "/v2/models/iris/versions/v1/ready"), http.StatusNotFound)
}

func TestV2BadInput(t *testing.T) {
	_, srv := serve(t, Options{})
	in := func(shape []int, datatype string, data any) string {
		return mustJSON(t, map[string]any{"inputs": []map[string]any{
			{"name": "input0", "shape": shape, "datatype": datatype, "data": data}}})
	}
	tests := []struct{ name, body string }{
		{"invalid JSON", `{"inputs": [`},
		{"no inputs", `{"inputs": []}`},
		{"BYTES", in([]int{1, 4}, "BYTES", []string{"a", "b", "c", "d"})},
		{"unknown datatype", in([]int{1, 4}, "COMPLEX", []float64{1, 2, 3, 4})},
		{"too few values", in([]int{2, 4}, "FP32", []float64{1, 2, 3, 4})},
		{"wrong feature count", in([]int{2, 2}, "FP32", []float64{1, 2, 3, 4})},
		{"rank 1", in([]int{4}, "FP32", []float64{1, 2, 3, 4})},
		{"zero rows", in([]int{0, 4}, "FP32", []float64{})},
		{"negative dim", in([]int{-1, 4}, "FP32", []float64{1, 2, 3, 4})},
		{"huge shape", in([]int{1 << 30, 1 << 30, 4}, "FP32", []float64{1, 2, 3, 4})},
		{"strings in data", in([]int{1, 4}, "FP32", []any{1, "2", 3, 4})},
		{"missing feature input", mustJSON(t, map[string]any{"inputs": featureInputs(allRows, false)[:3]})},
		{"unknown output", mustJSON(t, map[string]any{
			"inputs":  []map[string]any{{"name": "input0", "shape": []int{1, 4}, "datatype": "FP32", "data": rowSetosa}},
			"outputs": []map[string]any{{"name": "probabilities"}}})}, // v1 has none
		{"bad binary size", mustJSON(t, map[string]any{"inputs": []map[string]any{{"name": "input0", "shape": []int{1, 4},
			"datatype": "FP32", "parameters": map[string]any{"binary_data_size": 16}}}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, post(t, srv, "/v2/models/iris/infer", tc.body), http.StatusBadRequest)
		})
	}
}

func TestV2BinaryDatatypes(t *testing.T) {
	// One binary input per feature, each in a different datatype; the rows
	// are integral so every datatype holds them exactly: [5,3,1,0] is setosa,
	// [6,3,5,2] virginica.
	rows := [][]float64{{5, 3, 1, 0}, {6, 3, 5, 2}}
	types := []struct {
		datatype string
		put      func(*bytes.Buffer, float64)
	}{
		{"FP64", func(b *bytes.Buffer, x float64) { _ = binary.Write(b, binary.LittleEndian, x) }},
		{"INT64", func(b *bytes.Buffer, x float64) { _ = binary.Write(b, binary.LittleEndian, int64(x)) }},
		{"INT32", func(b *bytes.Buffer, x float64) { _ = binary.Write(b, binary.LittleEndian, int32(x)) }},
		{"UINT32", func(b *bytes.Buffer, x float64) { _ = binary.Write(b, binary.LittleEndian, uint32(x)) }},
	}
	var raw bytes.Buffer
	var inputs []map[string]any
	for j, f := range DefaultFeatures {
		before := raw.Len()
		for _, row := range rows {
			types[j].put(&raw, row[j])
		}
		inputs = append(inputs, map[string]any{"name": f, "shape": []int{len(rows), 1}, "datatype": types[j].datatype,
			"parameters": map[string]any{"binary_data_size": raw.Len() - before}})
	}
	header := mustJSON(t, map[string]any{"id": "bin", "inputs": inputs})
	_, srv := serve(t, Options{})
	r := call(t, srv, http.MethodPost, "/v2/models/iris/infer", "application/octet-stream", header+raw.String(),
		binaryHeader, strconv.Itoa(len(header)))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	assert.Equal(t, "bin", r.body["id"])
	assert.Equal(t, []int{Setosa, Virginica}, ints(t, r.body["outputs"].([]any)[0].(map[string]any)["data"]))

	t.Run("binary FP16 unsupported", func(t *testing.T) {
		h := mustJSON(t, map[string]any{"inputs": []map[string]any{{"name": "input0", "shape": []int{1, 4},
			"datatype": "FP16", "parameters": map[string]any{"binary_data_size": 8}}}})
		r := call(t, srv, http.MethodPost, "/v2/models/iris/infer", "", h+"12345678", binaryHeader, strconv.Itoa(len(h)))
		requireError(t, r, http.StatusBadRequest)
	})
}
