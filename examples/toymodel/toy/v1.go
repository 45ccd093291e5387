package toy

import (
	"fmt"
	"net/http"
	"strings"
)

// serveV1 handles KServe V1 and TF Serving REST paths; rest is the path after
// "/v1/models/":
//
//	GET  {name}                     status / readiness
//	GET  {name}/versions/{v}        status of one version
//	POST {name}:predict             prediction
//	POST {name}/versions/{v}:predict
func (m *Model) serveV1(w http.ResponseWriter, r *http.Request, rest string) {
	target, verb, hasVerb := strings.Cut(rest, ":")
	name, version, hasVersion := strings.Cut(target, "/versions/")
	if name != m.opts.Name || (hasVersion && (version == "" || strings.Contains(version, "/"))) {
		m.modelNotFound(w, r, name)
		return
	}
	if hasVersion && version != m.opts.Version {
		writeError(w, http.StatusNotFound, "model %s has no version %q (serving %s)", name, version, m.opts.Version)
		return
	}
	switch {
	case !hasVerb:
		if m.method(w, r, http.MethodGet) && m.ready(w) {
			writeJSON(w, http.StatusOK, m.v1Status())
		}
	case verb == "predict":
		if !m.method(w, r, http.MethodPost) {
			return
		}
		if body, ok := m.begin(w, r); ok {
			m.v1Predict(w, body)
		}
	default:
		writeError(w, http.StatusNotFound, "unsupported verb %q; the toy model serves :predict", verb)
	}
}

func (m *Model) modelNotFound(w http.ResponseWriter, r *http.Request, name string) {
	writeError(w, http.StatusNotFound, "model %q not found (serving %q) at %s", name, m.opts.Name, r.URL.Path)
}

// v1Status is the KServe V1 readiness answer with TF Serving's version status
// alongside.
func (m *Model) v1Status() map[string]any {
	return map[string]any{
		"name":          m.opts.Name,
		"ready":         true,
		"model_version": m.opts.Version,
		"model_version_status": []map[string]any{{
			"version": m.opts.Version,
			"state":   "AVAILABLE",
			"status":  map[string]any{"error_code": "OK", "error_message": ""},
		}},
	}
}

// v1Predict answers a row-format ({"instances": [...]}) or column-format
// ({"inputs": ...}) request. Rows answer {"predictions": [...]}, columns
// {"outputs": [...]}; both add "model_version" and, for versions other than
// v1, "probabilities" (one [setosa, versicolor, virginica] list per row).
func (m *Model) v1Predict(w http.ResponseWriter, body []byte) {
	var req map[string]any
	if !decodeJSON(w, body, &req) {
		return
	}
	instances, hasInstances := req["instances"]
	inputs, hasInputs := req["inputs"]
	var rows [][]float64
	var err error
	key := "predictions"
	switch {
	case hasInstances && hasInputs:
		writeError(w, http.StatusBadRequest, `request has both "instances" and "inputs"; want exactly one`)
		return
	case hasInstances:
		rows, err = m.rows(instances)
	case hasInputs:
		key = "outputs"
		rows, err = m.columnar(inputs)
	default:
		writeError(w, http.StatusBadRequest, `request needs "instances" (rows) or "inputs" (columns)`)
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	res := m.predict(rows)
	out := map[string]any{key: res.Classes, "model_version": m.opts.Version}
	if res.Probs != nil {
		out["probabilities"] = res.Probs
	}
	writeJSON(w, http.StatusOK, out)
}

// columnar decodes TF Serving's column format: an object of one column per
// feature ({"petal_length": [...], ...}), an object with a single tensor of
// rows ({"x": [[...], ...]}), or a bare list of rows.
func (m *Model) columnar(inputs any) ([][]float64, error) {
	switch x := inputs.(type) {
	case []any:
		return m.rows(x)
	case map[string]any:
		if _, named := x[m.opts.Features[0]]; !named && len(x) == 1 {
			for _, v := range x {
				return m.rows(v)
			}
		}
		return m.columns(x)
	default:
		return nil, fmt.Errorf(`"inputs" must be an object or a list, got %s`, jsonKind(inputs))
	}
}
