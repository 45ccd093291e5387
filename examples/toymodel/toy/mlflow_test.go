package toy

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Known rows in a permuted column order, to prove columns are matched by name.
var permutedColumns = []string{"petal_width", "sepal_length", "petal_length", "sepal_width"}

func permuted(rows [][]float64) [][]float64 {
	out := make([][]float64, len(rows))
	for i, row := range rows {
		out[i] = []float64{row[3], row[0], row[2], row[1]}
	}
	return out
}

const knownCSV = "petal_width, sepal_length,petal_length,sepal_width\r\n" +
	"0.2,5.1,1.4,3.5\r\n" +
	"1.4,6.8,4.8,2.8\r\n" +
	"1.6,6.0,4.5,3.4\r\n" +
	"1.3, 5.9,4.2,3.0\r\n" +
	"2.5,6.3,6.0,3.3\r\n"

func TestInvocations(t *testing.T) {
	tests := []struct {
		name, contentType, body string
	}{
		{"dataframe_split by column name", "application/json", mustJSON(t, map[string]any{
			"dataframe_split": map[string]any{"columns": permutedColumns, "data": permuted(allRows)}})},
		{"dataframe_split with index, no columns", "application/json", mustJSON(t, map[string]any{
			"dataframe_split": map[string]any{"index": []int{0, 1, 2, 3, 4}, "data": allRows}})},
		{"dataframe_records", "application/json", mustJSON(t, map[string]any{"dataframe_records": asObjects(allRows)})},
		{"instances", "application/json", mustJSON(t, map[string]any{"instances": allRows})},
		{"instances with params", "application/json; charset=utf-8", mustJSON(t, map[string]any{
			"instances": allRows, "params": map[string]any{"temperature": 0}})},
		{"inputs as columns", "application/json", mustJSON(t, map[string]any{"inputs": asColumns(allRows)})},
		{"inputs as rows", "application/json", mustJSON(t, map[string]any{"inputs": allRows})},
		{"no content type means JSON", "", mustJSON(t, map[string]any{"instances": allRows})},
		{"csv", "text/csv", knownCSV},
		{"csv with charset", "text/csv; charset=utf-8", knownCSV},
	}
	for _, v := range versions {
		_, srv := serve(t, Options{Version: v.version})
		for _, tc := range tests {
			t.Run(v.version+"/"+tc.name, func(t *testing.T) {
				r := call(t, srv, http.MethodPost, "/invocations", tc.contentType, tc.body)
				require.Equal(t, http.StatusOK, r.status, r.raw)
				assert.Equal(t, v.version, r.header.Get(VersionHeader))
				assert.Equal(t, v.version, r.body["model_version"])
				assert.Equal(t, v.classes, ints(t, r.body["predictions"]))
				if v.version == "v1" {
					assert.NotContains(t, r.body, "probabilities")
				} else {
					assert.Len(t, r.body["probabilities"], len(allRows))
				}
			})
		}
	}
}

func TestInvocationsBadInput(t *testing.T) {
	_, srv := serve(t, Options{})
	tests := []struct {
		name, contentType, body string
		status                  int
	}{
		{"two formats", "application/json", `{"instances": [[1,2,3,4]], "inputs": [[1,2,3,4]]}`, 400},
		{"unknown key", "application/json", `{"rows": [[1,2,3,4]]}`, 400},
		{"params only", "application/json", `{"params": {}}`, 400},
		{"invalid JSON", "application/json", `{"instances": `, 400},
		{"split without data", "application/json", `{"dataframe_split": {"columns": ["a"]}}`, 400},
		{"split ragged row", "application/json",
			`{"dataframe_split": {"columns": ["sepal_length","sepal_width","petal_length","petal_width"], "data": [[1,2,3]]}}`, 400},
		{"split missing column", "application/json",
			`{"dataframe_split": {"columns": ["sepal_length","sepal_width","petal_length"], "data": [[1,2,3]]}}`, 400},
		{"split column names not strings", "application/json", `{"dataframe_split": {"columns": [1,2,3,4], "data": [[1,2,3,4]]}}`, 400},
		{"records not objects", "application/json", `{"dataframe_records": [1, 2]}`, 400},
		{"csv header only", "text/csv", "sepal_length,sepal_width,petal_length,petal_width\n", 400},
		{"csv missing column", "text/csv", "sepal_length,sepal_width,petal_length\n1,2,3\n", 400},
		{"csv not a number", "text/csv", "sepal_length,sepal_width,petal_length,petal_width\n1,2,x,4\n", 400},
		{"csv NaN", "text/csv", "sepal_length,sepal_width,petal_length,petal_width\n1,2,NaN,4\n", 400},
		{"csv ragged", "text/csv", "sepal_length,sepal_width,petal_length,petal_width\n1,2,3\n", 400},
		{"unsupported type", "application/xml", `<x/>`, 415},
		{"malformed type", "text/csv; =", "a\n1\n", 415},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, call(t, srv, http.MethodPost, "/invocations", tc.contentType, tc.body), tc.status)
		})
	}
}
