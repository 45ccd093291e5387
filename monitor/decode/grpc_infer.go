package decode

import (
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// KServe V2 / Triton over gRPC: inference.GRPCInferenceService/ModelInfer.
//
//	ModelInferRequest:  1 model_name, 2 model_version, 3 id, 4 parameters,
//	                    5 inputs (InferInputTensor), 6 outputs (requested),
//	                    7 raw_input_contents (bytes, one per input)
//	ModelInferResponse: 1 model_name, 2 model_version, 3 id, 4 parameters,
//	                    5 outputs (InferOutputTensor), 6 raw_output_contents
//	Infer{Input,Output}Tensor: 1 name, 2 datatype, 3 shape (int64, packed),
//	                    4 parameters, 5 contents (InferTensorContents)
//	InferTensorContents: 1 bool, 2 int (int32), 3 int64, 4 uint (uint32),
//	                    5 uint64, 6 fp32, 7 fp64, 8 bytes
//
// The tensors become rows exactly as their HTTP/JSON form does (kservev2.go):
// shape[0] is the batch, names follow the same rules. A tensor's elements
// come from its raw contents when the message carries raw contents (then
// one per tensor, in order, little-endian and decoded like Triton's binary
// extension: BYTES elements 4-byte length-prefixed), else from the
// contents field its datatype selects; their count must match the shape.

// The fields read from ModelInfer messages.
const (
	inferTensors      protowire.Number = 5 // inputs of a request, outputs of a response
	inferRawRequest   protowire.Number = 7 // raw_input_contents
	inferRawResponse  protowire.Number = 6 // raw_output_contents
	tensorName        protowire.Number = 1
	tensorDatatype    protowire.Number = 2
	tensorShape       protowire.Number = 3
	tensorContents    protowire.Number = 5
	maxTensorsPerSide                  = 1 << 12 // more is not a model's input
)

func inferRequest(st *state, s *sink, in *Input) error {
	return grpcMessages(in.ReqBody, func(msg []byte) error {
		return st.inferSide(s, msg, inferRawRequest)
	})
}

func inferResponse(st *state, s *sink, in *Input) error {
	return grpcMessages(in.RespBody, func(msg []byte) error {
		return st.inferSide(s, msg, inferRawResponse)
	})
}

// inferSide decodes the tensors of one ModelInfer message into rows; raw
// is the field number of its raw contents.
func (st *state) inferSide(s *sink, msg []byte, rawField protowire.Number) error {
	what := "input"
	if s.pred {
		what = "output"
	}
	var specs, raws [][]byte
	it := protoFields{b: msg}
	for f, ok := it.next(); ok; f, ok = it.next() {
		if f.typ != protowire.BytesType || (f.num != inferTensors && f.num != rawField) {
			continue
		}
		if len(specs)+len(raws) == 2*maxTensorsPerSide {
			return malformed("too many " + what + "s")
		}
		if f.num == inferTensors {
			specs = append(specs, f.b)
		} else {
			raws = append(raws, f.b)
		}
	}
	switch {
	case it.err != nil:
		return it.err
	case len(specs) == 0:
		return malformed("no " + what + "s")
	case len(raws) > 0 && len(raws) != len(specs):
		return malformed("raw contents do not number the " + what + "s")
	}
	tensors := make([]tensor, len(specs))
	for i, spec := range specs {
		var raw []byte
		if len(raws) > 0 {
			raw = raws[i]
		}
		var err error
		if tensors[i], err = st.inferTensor(spec, raw, len(raws) > 0); err != nil {
			return fmtIndex(what, i, err)
		}
	}
	st.tensorRows(s, tensors)
	return nil
}

// inferTensor decodes one Infer{Input,Output}Tensor, its elements from raw
// when hasRaw, else from its contents.
func (st *state) inferTensor(msg, raw []byte, hasRaw bool) (tensor, error) {
	var out tensor
	var datatype, contents []byte
	sh := newDims()
	it := protoFields{b: msg}
	for f, ok := it.next(); ok; f, ok = it.next() {
		switch {
		case f.num == tensorName && f.typ == protowire.BytesType:
			out.name = st.intern(f.b)
		case f.num == tensorDatatype && f.typ == protowire.BytesType:
			datatype = f.b
		case f.num == tensorShape && f.typ == protowire.VarintType:
			if err := sh.add(int64(f.v)); err != nil {
				return out, err
			}
		case f.num == tensorShape && f.typ == protowire.BytesType:
			for p := f.b; len(p) > 0; {
				d, n := protowire.ConsumeVarint(p)
				if n < 0 {
					return out, malformed("bad packed shape")
				}
				if err := sh.add(int64(d)); err != nil {
					return out, err
				}
				p = p[n:]
			}
		case f.num == tensorContents && f.typ == protowire.BytesType:
			contents = f.b
		}
	}
	if it.err != nil {
		return out, it.err
	}
	out.rows, out.width = sh.rows, sh.width
	dt := strings.ToUpper(st.intern(datatype))
	var err error
	if hasRaw {
		out.cells, err = st.binaryCells(dt, raw, sh.count)
		return out, err
	}
	field, kind := contentsField(dt)
	if kind == kindNone {
		return out, malformed("datatype without a contents field")
	}
	if out.cells, err = st.repeated(contents, field, kind, sh.count); err != nil {
		return out, err
	}
	if len(out.cells) != sh.count {
		return out, malformed("fewer values than the shape holds")
	}
	return out, nil
}

// contentsField is the InferTensorContents field that carries datatype
// dt, and how its elements read. FP16 and BF16 travel only raw.
func contentsField(dt string) (protowire.Number, elemKind) {
	switch dt {
	case "BOOL":
		return 1, kindBool
	case "INT8", "INT16", "INT32":
		return 2, kindInt32
	case "INT64":
		return 3, kindInt64
	case "UINT8", "UINT16", "UINT32":
		return 4, kindUint32
	case "UINT64":
		return 5, kindUint64
	case "FP32":
		return 6, kindFloat
	case "FP64":
		return 7, kindDouble
	case "BYTES":
		return 8, kindBytes
	}
	return 0, kindNone
}
