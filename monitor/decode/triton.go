package decode

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// Triton's binary tensor extension. With the header
// Inference-Header-Content-Length: N, only the first N bytes of the body
// are JSON; the raw tensors follow, back to back, in the order of the
// tensors whose parameters carry binary_data_size (their byte length).
// Elements are little-endian; BOOL is one byte (non-zero is true); BYTES
// elements are each a 4-byte little-endian length and that many bytes.
// Every size is checked against the shape and the bytes present.

// splitBinary splits body into its JSON header and the raw tensor data;
// headerLen < 0 means the whole body is JSON.
func splitBinary(body []byte, headerLen int) (js, raw []byte, err error) {
	if headerLen < 0 {
		return body, nil, nil
	}
	if headerLen > len(body) {
		return nil, nil, malformed("Inference-Header-Content-Length beyond the body")
	}
	return body[:headerLen], body[headerLen:], nil
}

// elemSize is the byte size of a fixed-size datatype, 0 for others.
func elemSize(dt string) int {
	switch dt {
	case "BOOL", "INT8", "UINT8":
		return 1
	case "INT16", "UINT16", "FP16", "BF16":
		return 2
	case "INT32", "UINT32", "FP32":
		return 4
	case "INT64", "UINT64", "FP64":
		return 8
	}
	return 0
}

// binaryCells decodes the raw tensor b of datatype dt, which must hold
// exactly count elements.
func (st *state) binaryCells(dt string, b []byte, count int) ([]cell, error) {
	dt = strings.ToUpper(dt)
	if dt == "BYTES" {
		return st.bytesCells(b, count)
	}
	size := elemSize(dt)
	if size == 0 {
		return nil, malformed("unsupported binary datatype")
	}
	if len(b)%size != 0 || len(b)/size != count {
		return nil, malformed("binary_data_size does not match the shape")
	}
	cells := make([]cell, count)
	le := binary.LittleEndian
	for k := range cells {
		p := b[k*size : (k+1)*size]
		var f float64
		switch dt {
		case "BOOL":
			cells[k] = cell{v: cat(boolName(p[0] != 0)), ok: true}
			continue
		case "INT8":
			f = float64(int8(p[0]))
		case "UINT8":
			f = float64(p[0])
		case "INT16":
			f = float64(int16(le.Uint16(p)))
		case "UINT16":
			f = float64(le.Uint16(p))
		case "FP16":
			f = halfToFloat(le.Uint16(p))
		case "BF16":
			f = float64(math.Float32frombits(uint32(le.Uint16(p)) << 16))
		case "INT32":
			f = float64(int32(le.Uint32(p)))
		case "UINT32":
			f = float64(le.Uint32(p))
		case "FP32":
			f = float64(math.Float32frombits(le.Uint32(p)))
		case "INT64":
			f = float64(int64(le.Uint64(p)))
		case "UINT64":
			f = float64(le.Uint64(p))
		case "FP64":
			f = math.Float64frombits(le.Uint64(p))
		}
		cells[k].v, cells[k].ok = num(f)
	}
	return cells, nil
}

// bytesCells decodes a raw BYTES tensor: count length-prefixed strings
// filling b exactly.
func (st *state) bytesCells(b []byte, count int) ([]cell, error) {
	if count > len(b)/4 {
		return nil, malformed("binary_data_size too small for the shape")
	}
	cells := make([]cell, 0, count)
	for len(b) > 0 {
		if len(b) < 4 || len(cells) == count {
			return nil, malformed("binary_data_size does not match the shape")
		}
		n := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, malformed("BYTES element beyond binary_data_size")
		}
		cells = append(cells, cell{v: cat(st.intern(b[:n])), ok: true})
		b = b[n:]
	}
	if len(cells) != count {
		return nil, malformed("binary_data_size does not match the shape")
	}
	return cells, nil
}

func boolName(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// halfToFloat converts IEEE 754 binary16 bits; infinities and NaN become
// NaN, which is skipped.
func halfToFloat(h uint16) float64 {
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	var f float64
	switch exp {
	case 0:
		f = math.Ldexp(frac, -24) // subnormal
	case 0x1f:
		return math.NaN()
	default:
		f = math.Ldexp(1024+frac, exp-25)
	}
	if h&0x8000 != 0 {
		f = -f
	}
	return f
}

// fmtIndex prefixes err with the kind and index of the tensor it concerns.
func fmtIndex(what string, i int, err error) error {
	return fmt.Errorf("%s %d: %w", what, i, err)
}
