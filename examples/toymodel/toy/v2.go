package toy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// binaryHeader is Triton's binary tensor extension header: only the first N
// bytes of the body are JSON, raw tensors follow.
const binaryHeader = "Inference-Header-Content-Length"

// serveV2 handles the Open Inference Protocol (KServe V2, Triton); rest is
// the path after "/v2".
func (m *Model) serveV2(w http.ResponseWriter, r *http.Request, rest string) {
	switch rest {
	case "", "/":
		if m.method(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, map[string]any{
				"name": "vane-toymodel", "version": m.opts.Version, "extensions": []string{"binary_tensor_data"},
			})
		}
		return
	case "/health/live":
		if m.method(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, map[string]any{"live": true})
		}
		return
	case "/health/ready":
		if m.method(w, r, http.MethodGet) && m.ready(w) {
			writeJSON(w, http.StatusOK, map[string]any{"ready": true})
		}
		return
	}
	rest, ok := strings.CutPrefix(rest, "/models/")
	if !ok {
		m.notFound(w, r)
		return
	}
	// {name}[/versions/{v}][/ready|/infer]
	parts := strings.Split(rest, "/")
	if parts[0] != m.opts.Name {
		m.modelNotFound(w, r, parts[0])
		return
	}
	parts = parts[1:]
	if len(parts) >= 2 && parts[0] == "versions" {
		if parts[1] != m.opts.Version {
			writeError(w, http.StatusNotFound, "model %s has no version %q (serving %s)", m.opts.Name, parts[1], m.opts.Version)
			return
		}
		parts = parts[2:]
	}
	switch strings.Join(parts, "/") {
	case "":
		if m.method(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, m.v2Metadata())
		}
	case "ready":
		if m.method(w, r, http.MethodGet) && m.ready(w) {
			writeJSON(w, http.StatusOK, map[string]any{"name": m.opts.Name, "ready": true})
		}
	case "infer":
		if !m.method(w, r, http.MethodPost) {
			return
		}
		if body, ok := m.begin(w, r); ok {
			m.v2Infer(w, r, body)
		}
	default:
		m.notFound(w, r)
	}
}

type v2Tensor struct {
	Name       string         `json:"name"`
	Shape      []int64        `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       any            `json:"data"`
}

type v2Request struct {
	ID      string     `json:"id,omitempty"`
	Inputs  []v2Tensor `json:"inputs"`
	Outputs []struct {
		Name string `json:"name"`
	} `json:"outputs,omitempty"`
}

func (m *Model) v2Metadata() map[string]any {
	outputs := []map[string]any{{"name": "output0", "datatype": "INT64", "shape": []int{-1}}}
	if m.probs {
		outputs = append(outputs, map[string]any{"name": "probabilities", "datatype": "FP32", "shape": []int{-1, 3}})
	}
	return map[string]any{
		"name":     m.opts.Name,
		"versions": []string{m.opts.Version},
		"platform": "toymodel",
		"inputs": []map[string]any{{
			"name": "input0", "datatype": "FP32", "shape": []int{-1, len(m.opts.Features)},
			"parameters": map[string]any{"features": m.opts.Features},
		}},
		"outputs": outputs,
	}
}

// v2Infer answers an inference request: one input of shape [N, F] (data
// flat or nested), or one input of shape [N] or [N,1] per feature, named by
// the feature. Output "output0" holds the INT64 classes; versions other than
// v1 add "probabilities" (FP32, [N,3]). Requested outputs filter the answer.
func (m *Model) v2Infer(w http.ResponseWriter, r *http.Request, body []byte) {
	var raw []byte
	if h := r.Header.Get(binaryHeader); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n < 0 || n > len(body) {
			writeError(w, http.StatusBadRequest, "bad %s %q for a %d-byte body", binaryHeader, h, len(body))
			return
		}
		body, raw = body[:n], body[n:]
	}
	var req v2Request
	if !decodeJSON(w, body, &req) {
		return
	}
	rows, err := m.v2Rows(req.Inputs, raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	res := m.predict(rows)
	all := map[string]map[string]any{
		"output0": {"name": "output0", "shape": []int{len(rows)}, "datatype": "INT64", "data": res.Classes},
	}
	order := []string{"output0"}
	if res.Probs != nil {
		flat := make([]float64, 0, 3*len(rows))
		for _, p := range res.Probs {
			flat = append(flat, p...)
		}
		all["probabilities"] = map[string]any{"name": "probabilities", "shape": []int{len(rows), 3}, "datatype": "FP32", "data": flat}
		order = append(order, "probabilities")
	}
	if len(req.Outputs) > 0 {
		order = order[:0]
		for _, o := range req.Outputs {
			if all[o.Name] == nil {
				writeError(w, http.StatusBadRequest, "unknown output %q", o.Name)
				return
			}
			order = append(order, o.Name)
		}
	}
	outputs := make([]map[string]any, len(order))
	for i, name := range order {
		outputs[i] = all[name]
	}
	out := map[string]any{"model_name": m.opts.Name, "model_version": m.opts.Version, "outputs": outputs}
	if req.ID != "" {
		out["id"] = req.ID
	}
	writeJSON(w, http.StatusOK, out)
}

// v2Rows turns the request's input tensors into feature rows; raw holds the
// binary tensor data following the JSON header, if any.
func (m *Model) v2Rows(inputs []v2Tensor, raw []byte) ([][]float64, error) {
	if len(inputs) == 0 {
		return nil, errors.New("no inputs")
	}
	nf := len(m.opts.Features)
	data := make([][]float64, len(inputs))
	for i := range inputs {
		var err error
		data[i], raw, err = tensorData(&inputs[i], raw)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", inputs[i].Name, err)
		}
	}
	if len(raw) > 0 {
		return nil, fmt.Errorf("%d bytes of binary data left over", len(raw))
	}
	if len(inputs) == 1 {
		in := inputs[0]
		if len(in.Shape) < 2 || in.Shape[0] < 1 || shapeSize(in.Shape[1:]) != int64(nf) {
			return nil, fmt.Errorf("input %q: shape %v, want [N, %d]", in.Name, in.Shape, nf)
		}
		rows := make([][]float64, in.Shape[0])
		for i := range rows {
			rows[i] = data[0][i*nf : (i+1)*nf]
		}
		return rows, nil
	}
	// One input per feature.
	byName := make(map[string]int, len(inputs))
	for i, in := range inputs {
		if len(in.Shape) == 0 || len(in.Shape) > 2 || (len(in.Shape) == 2 && in.Shape[1] != 1) {
			return nil, fmt.Errorf("input %q: shape %v, want [N] or [N, 1] when each input is a feature", in.Name, in.Shape)
		}
		byName[in.Name] = i
	}
	n := inputs[0].Shape[0]
	if n < 1 {
		return nil, errors.New("no rows")
	}
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = make([]float64, nf)
	}
	for j, f := range m.opts.Features {
		k, ok := byName[f]
		if !ok {
			return nil, fmt.Errorf("missing input %q", f)
		}
		if inputs[k].Shape[0] != n {
			return nil, fmt.Errorf("input %q has %d rows, want %d", f, inputs[k].Shape[0], n)
		}
		for i := range rows {
			rows[i][j] = data[k][i]
		}
	}
	return rows, nil
}

// tensorData returns the values of t, from JSON data or, when
// parameters.binary_data_size is set, from the front of raw (returning the
// rest). The count must match the shape.
func tensorData(t *v2Tensor, raw []byte) ([]float64, []byte, error) {
	for _, d := range t.Shape {
		if d < 0 {
			return nil, raw, fmt.Errorf("negative dimension in shape %v", t.Shape)
		}
	}
	want := shapeSize(t.Shape)
	if want < 0 {
		return nil, raw, fmt.Errorf("shape %v is too large", t.Shape)
	}
	size := 0
	switch t.Datatype = strings.ToUpper(t.Datatype); t.Datatype {
	case "FP32", "INT32", "UINT32":
		size = 4
	case "FP64", "INT64", "UINT64":
		size = 8
	case "FP16", "BF16", "INT8", "INT16", "UINT8", "UINT16":
		size = 0 // JSON only
	default:
		return nil, raw, fmt.Errorf("datatype %q is not numeric", t.Datatype)
	}
	var vals []float64
	if bs, ok := t.Parameters["binary_data_size"]; ok {
		n, ok := bs.(float64)
		switch {
		case !ok || n < 0 || n != math.Trunc(n):
			return nil, raw, fmt.Errorf("bad binary_data_size %v", bs)
		case size == 0:
			return nil, raw, fmt.Errorf("binary %s tensors are not supported", t.Datatype)
		case int(n) > len(raw):
			return nil, raw, fmt.Errorf("binary_data_size %d but only %d bytes follow", int(n), len(raw))
		case int(n)%size != 0:
			return nil, raw, fmt.Errorf("binary_data_size %d is not a multiple of %d", int(n), size)
		}
		vals = decodeRaw(t.Datatype, raw[:int(n)], size)
		raw = raw[int(n):]
	} else {
		var err error
		if vals, err = flatten(t.Data, nil); err != nil {
			return nil, raw, err
		}
	}
	if int64(len(vals)) != want {
		return nil, raw, fmt.Errorf("%d values for shape %v (want %d)", len(vals), t.Shape, want)
	}
	for _, v := range vals {
		if _, err := finite(v); err != nil {
			return nil, raw, err
		}
	}
	return vals, raw, nil
}

func decodeRaw(datatype string, b []byte, size int) []float64 {
	vals := make([]float64, 0, len(b)/size)
	le := binary.LittleEndian
	for ; len(b) >= size; b = b[size:] {
		switch datatype {
		case "FP32":
			vals = append(vals, float64(math.Float32frombits(le.Uint32(b))))
		case "INT32":
			vals = append(vals, float64(int32(le.Uint32(b))))
		case "UINT32":
			vals = append(vals, float64(le.Uint32(b)))
		case "FP64":
			vals = append(vals, math.Float64frombits(le.Uint64(b)))
		case "INT64":
			vals = append(vals, float64(int64(le.Uint64(b))))
		case "UINT64":
			vals = append(vals, float64(le.Uint64(b)))
		}
	}
	return vals
}

// flatten appends the numbers of a flat or nested JSON list to dst.
func flatten(v any, dst []float64) ([]float64, error) {
	switch x := v.(type) {
	case float64:
		return append(dst, x), nil
	case []any:
		for _, e := range x {
			var err error
			if dst, err = flatten(e, dst); err != nil {
				return nil, err
			}
		}
		return dst, nil
	default:
		return nil, fmt.Errorf("data holds %s, want numbers", jsonKind(v))
	}
}

// shapeSize is the element count of shape, or -1 when absurdly large.
func shapeSize(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 || d > 1<<30 {
			return -1
		}
		if n *= d; n > 1<<30 {
			return -1
		}
	}
	return n
}
