package decode

import "math"

// Open Inference Protocol (KServe V2, Triton): named tensors with a shape,
// a datatype and row-major data, flat or nested; shape[0] is the batch.
// The binary tensor extension lives in triton.go.

// tensor is a decoded tensor: rows × width cells, row-major.
type tensor struct {
	name        string
	rows, width int
	cells       []cell
}

// cell is one tensor element; ok is false for the skipped ones (null, NaN,
// infinities).
type cell struct {
	v  Value
	ok bool
}

// maxElems bounds a shape's element count; larger shapes cannot match any
// body vane samples.
const maxElems = 1 << 40

func v2Request(st *state, s *sink, in *Input) error {
	return st.v2Side(s, in.ReqBody, in.InferenceHeaderLen)
}

func v2Response(st *state, s *sink, in *Input) error {
	return st.v2Side(s, in.RespBody, in.RespInferenceHeaderLen)
}

// v2Side decodes one side's tensors (inputs of a request, outputs of a
// response) into rows. headerLen < 0 means the whole body is JSON. The
// JSON is walked in place rather than decoded into structs: this halves
// the cost of a small request.
func (st *state) v2Side(s *sink, body []byte, headerLen int) error {
	js, raw, err := splitBinary(body, headerLen)
	if err != nil {
		return err
	}
	if js, err = jsonObject(js); err != nil {
		return err
	}
	what := "input"
	if s.pred {
		what = "output"
	}
	list := lookup(js, what+"s")
	switch {
	case isNull(list):
		return malformed("no " + what + "s")
	case list[0] != '[':
		return malformed(what + "s is not a list")
	}
	tensors := make([]tensor, 0, 4)
	it := elems(list)
	for v, ok := it.next(); ok; v, ok = it.next() {
		var t tensor
		if t, raw, err = st.tensorCells(v, raw); err != nil {
			return fmtIndex(what, len(tensors), err)
		}
		tensors = append(tensors, t)
	}
	if len(tensors) == 0 {
		return malformed("no " + what + "s")
	}
	if len(raw) > 0 {
		return malformed("binary data left over after the last tensor")
	}
	st.tensorRows(s, tensors)
	return nil
}

// tensorCells decodes the tensor object v ({"name", "shape", "datatype",
// "parameters", "data"}): its elements come from its JSON data or, when
// parameters.binary_data_size is set, from the front of raw (returning
// the rest).
func (st *state) tensorCells(v, raw []byte) (tensor, []byte, error) {
	out := tensor{rows: 1, width: 1}
	if v[0] != '{' {
		return out, raw, malformed("tensor is not an object")
	}
	var shape, datatype, params, data []byte
	it := members(v)
	for k, val, ok := it.next(); ok; k, val, ok = it.next() {
		switch {
		case keyIs(k, "name"):
			var isStr bool
			if out.name, isStr = st.str(val); !isStr {
				return out, raw, malformed("name is not a string")
			}
		case keyIs(k, "shape"):
			shape = val
		case keyIs(k, "datatype"):
			datatype = val
		case keyIs(k, "parameters"):
			params = val
		case keyIs(k, "data"):
			data = val
		}
	}
	if len(shape) == 0 || shape[0] != '[' {
		return out, raw, malformed("shape is not a list")
	}
	count := int64(1)
	dims := elems(shape)
	for i := 0; ; i++ {
		e, ok := dims.next()
		if !ok {
			break
		}
		d, ok := integer(e)
		switch {
		case !ok:
			return out, raw, malformed("shape holds a non-integer")
		case d < 0:
			return out, raw, malformed("negative dimension")
		}
		if count *= d; count > maxElems || d > maxElems {
			return out, raw, malformed("shape too large")
		}
		if i == 0 {
			out.rows = int(d)
		} else {
			out.width *= int(d)
		}
	}
	size, hasSize, err := binaryDataSize(params)
	if err != nil {
		return out, raw, err
	}
	if !hasSize {
		out.cells, err = st.jsonCells(data, int(count))
		return out, raw, err
	}
	if size > int64(len(raw)) {
		return out, raw, malformed("binary_data_size beyond the binary data")
	}
	dt, ok := st.str(datatype)
	if !ok {
		return out, raw, malformed("datatype is not a string")
	}
	out.cells, err = st.binaryCells(dt, raw[:size], int(count))
	return out, raw[size:], err
}

// binaryDataSize reads parameters.binary_data_size.
func binaryDataSize(params []byte) (int64, bool, error) {
	if isNull(params) {
		return 0, false, nil
	}
	if params[0] != '{' {
		return 0, false, malformed("parameters is not an object")
	}
	v := lookup(params, "binary_data_size")
	if isNull(v) {
		return 0, false, nil
	}
	size, ok := integer(v)
	if !ok || size < 0 {
		return 0, false, malformed("binary_data_size is not a size")
	}
	return size, true, nil
}

// integer parses v as a JSON integer of at most 2^53 in magnitude.
func integer(v []byte) (int64, bool) {
	f, ok := number(v)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// jsonCells decodes the leaves of data, which must number count.
func (st *state) jsonCells(data []byte, count int) ([]cell, error) {
	if isNull(data) {
		if count == 0 {
			return nil, nil
		}
		return nil, malformed("no data")
	}
	if count > (len(data)+1)/2 { // each element takes at least 2 bytes but the last
		return nil, malformed("fewer data elements than the shape holds")
	}
	cells := make([]cell, count)
	it := leaves(data)
	k := 0
	for leaf, ok := it.next(); ok; leaf, ok = it.next() {
		if k == count {
			return nil, malformed("more data elements than the shape holds")
		}
		if leaf[0] == '{' {
			return nil, malformed("data holds an object")
		}
		cells[k].v, cells[k].ok = st.scalar(leaf)
		k++
	}
	if k != count {
		return nil, malformed("fewer data elements than the shape holds")
	}
	return cells, nil
}

// tensorRows appends the rows of ts. With several tensors, each names its
// columns: name for a width of 1, else name[j]. A single input's columns
// are named by spec.Features, then as above; a single output's are
// prediction or prediction[k]. Tensors with fewer rows than others leave
// the later rows without their columns; empty tensors are ignored.
func (st *state) tensorRows(s *sink, ts []tensor) {
	width, rows, total := 0, 0, 0
	for i := range ts {
		if t := &ts[i]; len(t.cells) > 0 {
			width += t.width
			rows = max(rows, t.rows)
			total += len(t.cells)
		}
	}
	names := make([]string, 0, width)
	for i := range ts {
		t := &ts[i]
		if len(t.cells) == 0 {
			continue // no rows or no columns: shape alone may be huge
		}
		base := t.name
		if len(ts) == 1 && s.pred {
			base = prediction
		}
		for j := range t.width {
			switch {
			case len(ts) == 1 && !s.pred && j < len(st.spec.Features):
				names = append(names, st.spec.Features[j])
			case t.width == 1:
				names = append(names, base)
			default:
				names = append(names, st.indexed(base, j))
			}
		}
	}
	s.reserve(total)
	for r := range rows {
		col := 0
		for i := range ts {
			t := &ts[i]
			if len(t.cells) == 0 {
				continue
			}
			if r < t.rows {
				for j, c := range t.cells[r*t.width : (r+1)*t.width] {
					if c.ok {
						s.fields = append(s.fields, Field{Name: names[col+j], Value: c.v})
					}
				}
			}
			col += t.width
		}
		s.endRow()
	}
}
