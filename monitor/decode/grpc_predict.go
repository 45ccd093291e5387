package decode

import "google.golang.org/protobuf/encoding/protowire"

// TF Serving over gRPC: tensorflow.serving.PredictionService/Predict.
//
//	PredictRequest:  1 model_spec, 2 inputs (map string → TensorProto),
//	                 3 output_filter
//	PredictResponse: 1 outputs (map string → TensorProto), 2 model_spec
//	map entry:       1 key, 2 value
//	TensorProto:     1 dtype, 2 tensor_shape (2 dim {1 size, 2 name}),
//	                 4 tensor_content (raw little-endian), 5 float_val,
//	                 6 double_val, 7 int_val, 8 string_val, 10 int64_val,
//	                 11 bool_val, 13 half_val, 16 uint32_val, 17 uint64_val
//
// The map is TF Serving's column format, and its rows follow the HTTP
// column format's rules (rows.go): each tensor of rank >= 1 is a column
// whose element i (shape[0] is the batch) belongs to row i, named <key>
// for rank 1 and <key>[k] for a higher rank (row-major); a scalar (rank 0)
// applies to every row; a request with a single tensor of rank >= 2 names
// its columns like list instances (spec.Features[j], else f<j>). Outputs
// are named prediction.<key> and prediction.<key>[k]. Rows number the
// longest column. A tensor's values come from tensor_content (STRING
// excepted) or the typed field of its dtype; a single typed value with a
// larger shape is broadcast to every element, up to maxBroadcast elements
// per side of an exchange.

// maxPredictFields bounds the values one Predict message side yields,
// scalars repeated on every row included.
const maxPredictFields = 1 << 20

// maxBroadcast bounds the elements broadcast values fill on one side of
// an exchange, so that small messages cannot claim huge tensors.
const maxBroadcast = 1 << 16

// predictTensor is one decoded tensor of a Predict map.
type predictTensor struct {
	tensor
	rank int
}

func predictRequest(st *state, s *sink, in *Input) error {
	budget := maxBroadcast // elements broadcast values may still fill
	return grpcMessages(in.ReqBody, func(msg []byte) error {
		return st.predictSide(s, msg, 2, &budget)
	})
}

func predictResponse(st *state, s *sink, in *Input) error {
	budget := maxBroadcast
	return grpcMessages(in.RespBody, func(msg []byte) error {
		return st.predictSide(s, msg, 1, &budget)
	})
}

// predictSide decodes the tensor map (field mapField) of one Predict
// message into rows.
func (st *state) predictSide(s *sink, msg []byte, mapField protowire.Number, budget *int) error {
	what, prefix := "input", ""
	if s.pred {
		what, prefix = "output", predictionPrefix
	}
	var ts []predictTensor
	it := protoFields{b: msg}
	for f, ok := it.next(); ok; f, ok = it.next() {
		if f.num != mapField || f.typ != protowire.BytesType {
			continue
		}
		if len(ts) == maxTensorsPerSide {
			return malformed("too many " + what + "s")
		}
		t, err := st.mapTensor(f.b, prefix, budget)
		if err != nil {
			return fmtIndex(what, len(ts), err)
		}
		ts = append(ts, t)
	}
	switch {
	case it.err != nil:
		return it.err
	case len(ts) == 0:
		return malformed("no " + what + "s")
	}
	return st.predictRows(s, ts)
}

// mapTensor decodes one map entry {1: key, 2: TensorProto}, its name
// prefix+key.
func (st *state) mapTensor(entry []byte, prefix string, budget *int) (predictTensor, error) {
	var key, value []byte
	it := protoFields{b: entry}
	for f, ok := it.next(); ok; f, ok = it.next() {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			key = f.b
		case f.num == 2 && f.typ == protowire.BytesType:
			value = f.b
		}
	}
	if it.err != nil {
		return predictTensor{}, it.err
	}
	t, err := st.tensorProto(value, budget)
	b := append(st.scratch[:0], prefix...)
	b = append(b, key...)
	st.scratch = b
	t.name = st.intern(b)
	return t, err
}

// tfDtype maps a TensorProto dtype to its typed field, how its elements
// read, and the raw datatype of its tensor_content ("" for none).
func tfDtype(dtype uint64) (protowire.Number, elemKind, string) {
	switch dtype {
	case 1: // DT_FLOAT
		return 5, kindFloat, "FP32"
	case 2: // DT_DOUBLE
		return 6, kindDouble, "FP64"
	case 3: // DT_INT32
		return 7, kindInt32, "INT32"
	case 4: // DT_UINT8
		return 7, kindInt32, "UINT8"
	case 5: // DT_INT16
		return 7, kindInt32, "INT16"
	case 6: // DT_INT8
		return 7, kindInt32, "INT8"
	case 7: // DT_STRING
		return 8, kindBytes, ""
	case 9: // DT_INT64
		return 10, kindInt64, "INT64"
	case 10: // DT_BOOL
		return 11, kindBool, "BOOL"
	case 14: // DT_BFLOAT16
		return 13, kindBF16, "BF16"
	case 19: // DT_HALF
		return 13, kindHalf, "FP16"
	case 22: // DT_UINT32
		return 16, kindUint32, "UINT32"
	case 23: // DT_UINT64
		return 17, kindUint64, "UINT64"
	}
	return 0, kindNone, ""
}

// tensorProto decodes a TensorProto's shape and values; a broadcast value
// takes its elements from budget.
func (st *state) tensorProto(msg []byte, budget *int) (predictTensor, error) {
	var out predictTensor
	var dtype uint64
	var content []byte
	hasContent := false
	sh := newDims()
	it := protoFields{b: msg}
	for f, ok := it.next(); ok; f, ok = it.next() {
		switch {
		case f.num == 1 && f.typ == protowire.VarintType:
			dtype = f.v
		case f.num == 2 && f.typ == protowire.BytesType:
			if err := shapeProto(&sh, f.b); err != nil {
				return out, err
			}
		case f.num == 4 && f.typ == protowire.BytesType:
			content, hasContent = f.b, true
		}
	}
	if it.err != nil {
		return out, it.err
	}
	out.rank, out.rows, out.width = sh.rank, sh.rows, sh.width
	field, kind, rawType := tfDtype(dtype)
	if kind == kindNone {
		return out, malformed("unsupported dtype")
	}
	var err error
	if hasContent {
		if rawType == "" {
			return out, malformed("tensor_content of a STRING tensor")
		}
		out.cells, err = st.binaryCells(rawType, content, sh.count)
		return out, err
	}
	if out.cells, err = st.repeated(msg, field, kind, sh.count); err != nil {
		return out, err
	}
	switch n := len(out.cells); {
	case n == sh.count:
	case n == 1 && sh.count <= *budget:
		*budget -= sh.count
		c := out.cells[0]
		out.cells = make([]cell, sh.count)
		for i := range out.cells {
			out.cells[i] = c
		}
	case n == 1:
		return out, malformed("broadcast shape too large")
	default:
		return out, malformed("fewer values than the shape holds")
	}
	return out, nil
}

// shapeProto adds the dims of a TensorShapeProto to sh.
func shapeProto(sh *dims, msg []byte) error {
	it := protoFields{b: msg}
	for f, ok := it.next(); ok; f, ok = it.next() {
		switch {
		case f.num == 2 && f.typ == protowire.BytesType:
			size := int64(0)
			dim := protoFields{b: f.b}
			for d, ok := dim.next(); ok; d, ok = dim.next() {
				if d.num == 1 && d.typ == protowire.VarintType {
					size = int64(d.v)
				}
			}
			if dim.err != nil {
				return dim.err
			}
			if err := sh.add(size); err != nil {
				return err
			}
		case f.num == 3 && f.typ == protowire.VarintType && f.v != 0:
			return malformed("shape of unknown rank")
		}
	}
	return it.err
}

// predictRows appends the rows of a Predict map's tensors: the columns of
// rank >= 1 first, in order, then the scalars, row by row. Empty tensors
// are ignored.
func (st *state) predictRows(s *sink, ts []predictTensor) error {
	rows, lists, total, scalars := 0, 0, 0, 0
	for i := range ts {
		switch t := &ts[i]; {
		case t.rank == 0:
			scalars += len(t.cells)
		case len(t.cells) > 0: // an empty one's shape may be huge
			rows = max(rows, t.rows)
			lists++
			total += len(t.cells)
		}
	}
	if lists == 0 {
		rows = 1
	}
	// Scalars repeat on every row: bound what they multiply into.
	if scalars > 0 && rows > (maxPredictFields-total)/scalars {
		return malformed("scalar inputs repeated on too many rows")
	}
	total += rows * scalars
	single := !s.pred && len(ts) == 1 && ts[0].rank >= 2
	names := make([][]string, len(ts))
	for i := range ts {
		t := &ts[i]
		if t.rank < 2 || len(t.cells) == 0 {
			continue
		}
		names[i] = make([]string, t.width)
		for j := range names[i] {
			if single {
				names[i][j] = st.column(j)
			} else {
				names[i][j] = st.indexed(t.name, j)
			}
		}
	}
	s.reserve(min(total, maxReserve))
	for r := range rows {
		for _, scalars := range [2]bool{false, true} {
			for i := range ts {
				t := &ts[i]
				if (t.rank == 0) != scalars || (!scalars && r >= t.rows) || len(t.cells) == 0 {
					continue
				}
				var cs []cell
				if scalars {
					cs = t.cells
				} else {
					cs = t.cells[r*t.width : (r+1)*t.width]
				}
				for j, c := range cs {
					if !c.ok {
						continue
					}
					name := t.name
					if names[i] != nil {
						name = names[i][j]
					}
					s.fields = append(s.fields, Field{Name: name, Value: c.v})
				}
			}
		}
		s.endRow()
	}
	return nil
}
