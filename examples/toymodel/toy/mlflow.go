package toy

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// serveMLflowHealth answers MLflow's /ping and /health (also the OpenAI
// servers' health probe).
func (m *Model) serveMLflowHealth(w http.ResponseWriter, r *http.Request) {
	if m.method(w, r, http.MethodGet) && m.ready(w) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "model": m.opts.Name, "version": m.opts.Version})
	}
}

// serveInvocations answers MLflow's POST /invocations. JSON bodies carry
// exactly one of dataframe_split, dataframe_records, instances or inputs
// (plus optional params); text/csv bodies start with a header line. The
// answer is {"predictions": [...], "model_version": ...}, plus
// "probabilities" for versions other than v1.
func (m *Model) serveInvocations(w http.ResponseWriter, r *http.Request) {
	if !m.method(w, r, http.MethodPost) {
		return
	}
	body, ok := m.begin(w, r)
	if !ok {
		return
	}
	ct := r.Header.Get("Content-Type")
	mt := "application/json"
	if ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			writeError(w, http.StatusUnsupportedMediaType, "bad Content-Type %q: %v", ct, err)
			return
		}
	}
	var rows [][]float64
	var err error
	switch mt {
	case "application/json":
		var req map[string]any
		if !decodeJSON(w, body, &req) {
			return
		}
		rows, err = m.mlflowJSON(req)
	case "text/csv":
		rows, err = m.csvRows(body)
	default:
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type %q not supported; use application/json or text/csv", mt)
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	res := m.predict(rows)
	out := map[string]any{"predictions": res.Classes, "model_version": m.opts.Version}
	if res.Probs != nil {
		out["probabilities"] = res.Probs
	}
	writeJSON(w, http.StatusOK, out)
}

// mlflowKeys are the input formats of MLflow's scoring server.
var mlflowKeys = []string{"dataframe_split", "dataframe_records", "instances", "inputs"}

func (m *Model) mlflowJSON(req map[string]any) ([][]float64, error) {
	var key string
	for k := range req {
		switch k {
		case "params":
		case "dataframe_split", "dataframe_records", "instances", "inputs":
			if key != "" {
				return nil, fmt.Errorf("request has both %q and %q; want exactly one of %v", key, k, mlflowKeys)
			}
			key = k
		default:
			return nil, fmt.Errorf("unknown key %q; want exactly one of %v (and optional params)", k, mlflowKeys)
		}
	}
	v := req[key]
	switch key {
	case "dataframe_split":
		return m.dataframeSplit(v)
	case "dataframe_records", "instances":
		return m.rows(v)
	case "inputs":
		if cols, ok := v.(map[string]any); ok {
			return m.columns(cols)
		}
		return m.rows(v)
	default:
		return nil, fmt.Errorf("request needs one of %v", mlflowKeys)
	}
}

// dataframeSplit decodes {"columns": [...], "data": [[...], ...]}; without
// columns the data rows are in feature order.
func (m *Model) dataframeSplit(v any) ([][]float64, error) {
	split, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("dataframe_split must be an object, got %s", jsonKind(v))
	}
	data, ok := split["data"].([]any)
	if !ok {
		return nil, errors.New(`dataframe_split needs "data", a list of rows`)
	}
	colsAny, hasCols := split["columns"]
	if !hasCols {
		return m.rows(data)
	}
	colList, ok := colsAny.([]any)
	if !ok {
		return nil, errors.New(`dataframe_split "columns" must be a list of names`)
	}
	cols := make([]string, len(colList))
	for i, c := range colList {
		if cols[i], ok = c.(string); !ok {
			return nil, fmt.Errorf("column %d name must be a string, got %s", i, jsonKind(c))
		}
	}
	records := make([]any, len(data))
	for i, d := range data {
		row, ok := d.([]any)
		if !ok || len(row) != len(cols) {
			return nil, fmt.Errorf("row %d must be a list of %d values", i, len(cols))
		}
		rec := make(map[string]any, len(cols))
		for j, c := range cols {
			rec[c] = row[j]
		}
		records[i] = rec
	}
	return m.rows(records)
}

// csvRows parses a CSV body whose first line names the columns.
func (m *Model) csvRows(body []byte) ([][]float64, error) {
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("bad CSV: %v", err)
	}
	if len(recs) < 2 {
		return nil, errors.New("CSV needs a header line and at least one row")
	}
	index := make(map[string]int, len(recs[0]))
	for j, name := range recs[0] {
		index[strings.TrimSpace(name)] = j
	}
	rows := make([][]float64, len(recs)-1)
	for i, rec := range recs[1:] {
		row := make([]float64, len(m.opts.Features))
		for j, name := range m.opts.Features {
			k, ok := index[name]
			if !ok {
				return nil, fmt.Errorf("CSV header lacks column %q", name)
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(rec[k]), 64)
			if err != nil {
				return nil, fmt.Errorf("CSV line %d column %q: %q is not a number", i+2, name, rec[k])
			}
			if row[j], err = finite(f); err != nil {
				return nil, fmt.Errorf("CSV line %d column %q: %v", i+2, name, err)
			}
		}
		rows[i] = row
	}
	return rows, nil
}
