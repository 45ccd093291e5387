package decode

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// gRPC: the bodies are gRPC messages, each a 5-byte prefix (a compressed
// flag, then the big-endian length) and a protobuf message, read straight
// from the wire format (field number, wire type) without generated code.
// The method path picks the decoder; a method that carries no tensors
// (health checks, metadata, any other service) yields no rows and no
// error. A compressed message is an error, never guessed at.

// The gRPC methods whose messages are decoded.
const (
	GRPCModelInfer = "/inference.GRPCInferenceService/ModelInfer"
	GRPCPredict    = "/tensorflow.serving.PredictionService/Predict"
)

// grpcDecoders returns the request and response decoders of the gRPC
// method at path; ok is false for a method that is not decoded.
func grpcDecoders(path string) (request, response func(*state, *sink, *Input) error, ok bool) {
	switch path {
	case GRPCModelInfer:
		return inferRequest, inferResponse, true
	case GRPCPredict:
		return predictRequest, predictResponse, true
	}
	return nil, nil, false
}

// grpcMessages calls fn on each message of a gRPC body, in order.
func grpcMessages(body []byte, fn func(msg []byte) error) error {
	for len(body) > 0 {
		if len(body) < 5 {
			return malformed("gRPC message prefix cut short")
		}
		switch body[0] {
		case 0:
		case 1:
			return malformed("compressed gRPC message")
		default:
			return malformed("bad gRPC message flag")
		}
		n := binary.BigEndian.Uint32(body[1:5])
		body = body[5:]
		if uint64(n) > uint64(len(body)) {
			return malformed("gRPC message beyond the body")
		}
		if err := fn(body[:n]); err != nil {
			return err
		}
		body = body[n:]
	}
	return nil
}

// protoField is one field of a protobuf message: its number, wire type and
// value. For the bytes type, b is the payload; for the others, v holds the
// varint or fixed bits.
type protoField struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// protoFields iterates over the fields of a protobuf message. Groups are
// skipped whole.
type protoFields struct {
	b   []byte
	err error
}

// next returns the next field; ok is false at the end or on an error,
// which err then holds.
func (it *protoFields) next() (f protoField, ok bool) {
	if len(it.b) == 0 || it.err != nil {
		return f, false
	}
	num, typ, n := protowire.ConsumeTag(it.b)
	if n < 0 {
		it.err = malformed("bad protobuf tag")
		return f, false
	}
	it.b = it.b[n:]
	f.num, f.typ = num, typ
	switch typ {
	case protowire.VarintType:
		f.v, n = protowire.ConsumeVarint(it.b)
	case protowire.Fixed32Type:
		var v uint32
		v, n = protowire.ConsumeFixed32(it.b)
		f.v = uint64(v)
	case protowire.Fixed64Type:
		f.v, n = protowire.ConsumeFixed64(it.b)
	case protowire.BytesType:
		f.b, n = protowire.ConsumeBytes(it.b)
	default:
		n = protowire.ConsumeFieldValue(num, typ, it.b)
	}
	if n < 0 {
		it.err = malformed("bad protobuf field")
		return f, false
	}
	it.b = it.b[n:]
	return f, true
}

// elemKind is how a repeated scalar field's elements are read and what
// value each becomes.
type elemKind uint8

const (
	kindNone   elemKind = iota
	kindBool            // varint, categorical "true"/"false"
	kindInt32           // varint, the low 32 bits signed
	kindInt64           // varint, signed
	kindUint32          // varint, the low 32 bits
	kindUint64          // varint
	kindFloat           // fixed32
	kindDouble          // fixed64
	kindHalf            // varint holding IEEE binary16 bits
	kindBF16            // varint holding bfloat16 bits
	kindBytes           // length-delimited, categorical
)

// wireType is the wire type of one unpacked element of kind k.
func (k elemKind) wireType() protowire.Type {
	switch k {
	case kindFloat:
		return protowire.Fixed32Type
	case kindDouble:
		return protowire.Fixed64Type
	case kindBytes:
		return protowire.BytesType
	}
	return protowire.VarintType
}

// minSize is the fewest bytes one element of kind k takes on the wire
// (packed: its value alone; unpacked ones take more), which bounds the
// elements a message can hold.
func (k elemKind) minSize() int {
	switch k {
	case kindFloat:
		return 4
	case kindDouble:
		return 8
	case kindBytes:
		return 2 // a tag and a zero length
	}
	return 1
}

// value turns an element's bits into a value; ok is false for NaN and
// infinities, which are skipped.
func (k elemKind) value(bits uint64) (Value, bool) {
	switch k {
	case kindBool:
		return cat(boolName(bits != 0)), true
	case kindInt32:
		return num(float64(int32(bits)))
	case kindInt64:
		return num(float64(int64(bits)))
	case kindUint32:
		return num(float64(uint32(bits)))
	case kindFloat:
		return num(float64(math.Float32frombits(uint32(bits))))
	case kindDouble:
		return num(math.Float64frombits(bits))
	case kindHalf:
		return num(halfToFloat(uint16(bits)))
	case kindBF16:
		return num(float64(math.Float32frombits(uint32(uint16(bits)) << 16)))
	}
	return num(float64(bits)) // kindUint64
}

// repeated collects the elements of the repeated field fieldNum of kind k
// from msg, packed or not, in order. It allocates for at most max
// elements, and no more than msg can hold; more than max is an error.
func (st *state) repeated(msg []byte, fieldNum protowire.Number, k elemKind, max int) ([]cell, error) {
	cells := make([]cell, 0, min(max, len(msg)/k.minSize()))
	add := func(c cell) error {
		if len(cells) == max {
			return malformed("more values than the shape holds")
		}
		cells = append(cells, c)
		return nil
	}
	it := protoFields{b: msg}
	for f, ok := it.next(); ok; f, ok = it.next() {
		if f.num != fieldNum {
			continue
		}
		want := k.wireType()
		switch {
		case f.typ == want && k == kindBytes:
			if err := add(cell{v: cat(st.intern(f.b)), ok: true}); err != nil {
				return nil, err
			}
		case f.typ == want:
			var c cell
			c.v, c.ok = k.value(f.v)
			if err := add(c); err != nil {
				return nil, err
			}
		case f.typ == protowire.BytesType && k != kindBytes:
			for p := f.b; len(p) > 0; {
				var bits uint64
				var n int
				switch want {
				case protowire.Fixed32Type:
					var v uint32
					v, n = protowire.ConsumeFixed32(p)
					bits = uint64(v)
				case protowire.Fixed64Type:
					bits, n = protowire.ConsumeFixed64(p)
				default:
					bits, n = protowire.ConsumeVarint(p)
				}
				if n < 0 {
					return nil, malformed("bad packed values")
				}
				p = p[n:]
				var c cell
				c.v, c.ok = k.value(bits)
				if err := add(c); err != nil {
					return nil, err
				}
			}
		default:
			return nil, malformed("values of the wrong wire type")
		}
	}
	if it.err != nil {
		return nil, it.err
	}
	return cells, nil
}

// dims accumulates a tensor's shape: rows is the first dimension, width
// the product of the others, count the element count.
type dims struct {
	rank        int
	rows, width int
	count       int
}

func newDims() dims { return dims{rows: 1, width: 1, count: 1} }

// add appends dimension d, refusing negative ones (unknown sizes have no
// place in a tensor that carries data) and shapes beyond maxElems.
func (sh *dims) add(d int64) error {
	switch {
	case d < 0:
		return malformed("negative dimension")
	case d > maxElems:
		return malformed("shape too large")
	}
	if d != 0 && int64(sh.count) > maxElems/d {
		return malformed("shape too large")
	}
	sh.count *= int(d)
	if sh.rank == 0 {
		sh.rows = int(d)
	} else {
		if d != 0 && int64(sh.width) > maxElems/d {
			return malformed("shape too large")
		}
		sh.width *= int(d)
	}
	sh.rank++
	return nil
}
