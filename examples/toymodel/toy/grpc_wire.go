package toy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The ModelInfer messages of KServe V2 / Triton's
// inference.GRPCInferenceService, written and read with protowire, without
// generated code:
//
//	ModelInferRequest:  1 model_name, 2 model_version, 3 id, 4 parameters,
//	                    5 inputs, 6 outputs ({1 name}), 7 raw_input_contents
//	ModelInferResponse: 1 model_name, 2 model_version, 3 id, 4 parameters,
//	                    5 outputs, 6 raw_output_contents
//	tensor:             1 name, 2 datatype, 3 shape (packed int64),
//	                    4 parameters, 5 contents
//	contents:           1 bool, 2 int (int32), 3 int64, 4 uint (uint32),
//	                    5 uint64, 6 fp32, 7 fp64, 8 bytes

// InferTensor is one numeric tensor of a ModelInfer message.
type InferTensor struct {
	Name     string
	Datatype string // FP32, FP64, INT8..INT64 or UINT8..UINT64
	Shape    []int64
	Values   []float64 // row-major
}

// InferMessage is a ModelInferRequest or ModelInferResponse.
type InferMessage struct {
	ModelName, ModelVersion, ID string
	// Tensors are the inputs of a request, the outputs of a response.
	Tensors []InferTensor
	// Requested names the outputs a request asks for (none: all).
	Requested []string
	// Raw carries the values in raw_input_contents / raw_output_contents,
	// little-endian, instead of each tensor's typed contents.
	Raw bool
}

// MarshalRequest encodes msg as a ModelInferRequest.
func (msg *InferMessage) MarshalRequest() ([]byte, error) { return msg.marshal(7, true) }

// MarshalResponse encodes msg as a ModelInferResponse.
func (msg *InferMessage) MarshalResponse() ([]byte, error) { return msg.marshal(6, false) }

func (msg *InferMessage) marshal(rawField protowire.Number, request bool) ([]byte, error) {
	b := appendString(nil, 1, msg.ModelName)
	b = appendString(b, 2, msg.ModelVersion)
	b = appendString(b, 3, msg.ID)
	var raws [][]byte
	for _, t := range msg.Tensors {
		field, size := contentsOf(t.Datatype)
		if field == 0 {
			return nil, fmt.Errorf("tensor %q: datatype %q is not numeric", t.Name, t.Datatype)
		}
		tb := appendString(nil, 1, t.Name)
		tb = appendString(tb, 2, t.Datatype)
		var shape []byte
		for _, d := range t.Shape {
			shape = protowire.AppendVarint(shape, uint64(d))
		}
		tb = protowire.AppendBytes(protowire.AppendTag(tb, 3, protowire.BytesType), shape)
		if msg.Raw {
			raws = append(raws, rawValues(t.Datatype, size, t.Values))
		} else {
			c := protowire.AppendTag(nil, field, protowire.BytesType)
			c = protowire.AppendBytes(c, packedValues(t.Datatype, t.Values))
			tb = protowire.AppendBytes(protowire.AppendTag(tb, 5, protowire.BytesType), c)
		}
		b = protowire.AppendBytes(protowire.AppendTag(b, 5, protowire.BytesType), tb)
	}
	if request {
		for _, name := range msg.Requested {
			b = protowire.AppendBytes(protowire.AppendTag(b, 6, protowire.BytesType), appendString(nil, 1, name))
		}
	}
	for _, r := range raws {
		b = protowire.AppendBytes(protowire.AppendTag(b, rawField, protowire.BytesType), r)
	}
	return b, nil
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
}

// contentsOf is the contents field of a numeric datatype and its raw
// element size; 0, 0 for others.
func contentsOf(dt string) (protowire.Number, int) {
	switch dt {
	case "INT8":
		return 2, 1
	case "INT16":
		return 2, 2
	case "INT32":
		return 2, 4
	case "INT64":
		return 3, 8
	case "UINT8":
		return 4, 1
	case "UINT16":
		return 4, 2
	case "UINT32":
		return 4, 4
	case "UINT64":
		return 5, 8
	case "FP32":
		return 6, 4
	case "FP64":
		return 7, 8
	}
	return 0, 0
}

func packedValues(dt string, vs []float64) []byte {
	var b []byte
	for _, v := range vs {
		switch dt {
		case "FP32":
			b = protowire.AppendFixed32(b, math.Float32bits(float32(v)))
		case "FP64":
			b = protowire.AppendFixed64(b, math.Float64bits(v))
		case "UINT8", "UINT16", "UINT32", "UINT64":
			b = protowire.AppendVarint(b, uint64(v))
		default:
			b = protowire.AppendVarint(b, uint64(int64(v)))
		}
	}
	return b
}

func rawValues(dt string, size int, vs []float64) []byte {
	b := make([]byte, 0, size*len(vs))
	le := binary.LittleEndian
	for _, v := range vs {
		var bits uint64
		switch {
		case dt == "FP32":
			bits = uint64(math.Float32bits(float32(v)))
		case dt == "FP64":
			bits = math.Float64bits(v)
		case strings.HasPrefix(dt, "UINT"):
			bits = uint64(v)
		default:
			bits = uint64(int64(v))
		}
		b = le.AppendUint64(b, bits)[:len(b)+size] // little-endian: the low bytes come first
	}
	return b
}

// ParseInferRequest decodes a ModelInferRequest.
func ParseInferRequest(b []byte) (InferMessage, error) { return parseInfer(b, 7, true) }

// ParseInferResponse decodes a ModelInferResponse.
func ParseInferResponse(b []byte) (InferMessage, error) { return parseInfer(b, 6, false) }

var errProto = errors.New("malformed protobuf")

// fieldsOf calls fn on each field of a message; bytes fields get their
// payload, varints their value.
func fieldsOf(b []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, p []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errProto
		}
		b = b[n:]
		var v uint64
		var p []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			p, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errProto
		}
		b = b[n:]
		if err := fn(num, typ, v, p); err != nil {
			return err
		}
	}
	return nil
}

func parseInfer(b []byte, rawField protowire.Number, request bool) (InferMessage, error) {
	var msg InferMessage
	var specs, raws [][]byte
	err := fieldsOf(b, func(num protowire.Number, typ protowire.Type, _ uint64, p []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch {
		case num == 1:
			msg.ModelName = string(p)
		case num == 2:
			msg.ModelVersion = string(p)
		case num == 3:
			msg.ID = string(p)
		case num == 5:
			specs = append(specs, p)
		case num == rawField:
			raws = append(raws, p)
		case num == 6 && request:
			return fieldsOf(p, func(num protowire.Number, typ protowire.Type, _ uint64, p []byte) error {
				if num == 1 && typ == protowire.BytesType {
					msg.Requested = append(msg.Requested, string(p))
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return msg, err
	}
	if len(raws) > 0 && len(raws) != len(specs) {
		return msg, fmt.Errorf("%d raw contents for %d tensors", len(raws), len(specs))
	}
	msg.Raw = len(raws) > 0
	for i, spec := range specs {
		var raw []byte
		if msg.Raw {
			raw = raws[i]
		}
		t, err := parseTensor(spec, raw, msg.Raw)
		if err != nil {
			return msg, fmt.Errorf("tensor %d: %w", i, err)
		}
		msg.Tensors = append(msg.Tensors, t)
	}
	return msg, nil
}

func parseTensor(b, raw []byte, hasRaw bool) (InferTensor, error) {
	var t InferTensor
	var contents []byte
	err := fieldsOf(b, func(num protowire.Number, typ protowire.Type, v uint64, p []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			t.Name = string(p)
		case num == 2 && typ == protowire.BytesType:
			t.Datatype = strings.ToUpper(string(p))
		case num == 3 && typ == protowire.VarintType:
			t.Shape = append(t.Shape, int64(v))
		case num == 3 && typ == protowire.BytesType:
			for len(p) > 0 {
				d, n := protowire.ConsumeVarint(p)
				if n < 0 {
					return errProto
				}
				t.Shape, p = append(t.Shape, int64(d)), p[n:]
			}
		case num == 5 && typ == protowire.BytesType:
			contents = p
		}
		return nil
	})
	if err != nil {
		return t, err
	}
	want := shapeSize(t.Shape)
	if want < 0 {
		return t, fmt.Errorf("shape %v is negative or too large", t.Shape)
	}
	field, size := contentsOf(t.Datatype)
	if field == 0 {
		return t, fmt.Errorf("datatype %q is not numeric", t.Datatype)
	}
	if hasRaw {
		if int64(len(raw)) != want*int64(size) {
			return t, fmt.Errorf("%d raw bytes for shape %v of %s", len(raw), t.Shape, t.Datatype)
		}
		t.Values = make([]float64, 0, want)
		for ; len(raw) > 0; raw = raw[size:] {
			var w [8]byte
			copy(w[:], raw[:size])
			t.Values = append(t.Values, fromBits(t.Datatype, binary.LittleEndian.Uint64(w[:])))
		}
		return t, nil
	}
	err = fieldsOf(contents, func(num protowire.Number, typ protowire.Type, v uint64, p []byte) error {
		if num != field {
			return nil
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("unpacked contents are not supported")
		}
		for len(p) > 0 && int64(len(t.Values)) <= want {
			var bits uint64
			var n int
			switch t.Datatype {
			case "FP32":
				var u uint32
				u, n = protowire.ConsumeFixed32(p)
				bits = uint64(u)
			case "FP64":
				bits, n = protowire.ConsumeFixed64(p)
			default:
				bits, n = protowire.ConsumeVarint(p)
			}
			if n < 0 {
				return errProto
			}
			t.Values, p = append(t.Values, fromBits(t.Datatype, bits)), p[n:]
		}
		return nil
	})
	if err != nil {
		return t, err
	}
	if int64(len(t.Values)) != want {
		return t, fmt.Errorf("%d values for shape %v (want %d)", len(t.Values), t.Shape, want)
	}
	return t, nil
}

// fromBits converts one element's bits (a varint, or raw little-endian
// bytes zero-extended) to a number.
func fromBits(dt string, bits uint64) float64 {
	switch dt {
	case "FP32":
		return float64(math.Float32frombits(uint32(bits)))
	case "FP64":
		return math.Float64frombits(bits)
	case "INT8":
		return float64(int8(bits))
	case "INT16":
		return float64(int16(bits))
	case "INT32":
		return float64(int32(bits))
	case "INT64":
		return float64(int64(bits))
	case "UINT8":
		return float64(uint8(bits))
	case "UINT16":
		return float64(uint16(bits))
	case "UINT32":
		return float64(uint32(bits))
	}
	return float64(bits)
}

// RawCodec is a gRPC codec that passes *[]byte messages through untouched,
// so that services can be served and called without generated code; other
// messages (the health service's) go through protobuf as usual. Use it
// with grpc.ForceServerCodec or grpc.ForceCodec.
type RawCodec struct{}

// Marshal returns *v for a *[]byte, else the protobuf encoding of v.
func (RawCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case *[]byte:
		return *m, nil
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
}

// Unmarshal copies data into a *[]byte (gRPC may reuse data), else decodes
// it as protobuf.
func (RawCodec) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case *[]byte:
		*m = append((*m)[:0], data...)
		return nil
	case proto.Message:
		return proto.Unmarshal(data, m)
	}
	return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
}

// Name is "proto": on the wire the messages are protobuf.
func (RawCodec) Name() string { return "proto" }
