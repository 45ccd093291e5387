package decode

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
)

// state is one Decode call's scratch: the spec and an interner, so that
// the names and labels repeated on every row are allocated once per call.
type state struct {
	spec    *Spec
	small   [smallIntern]string // the first interned strings, searched linearly
	nsmall  int
	table   map[string]string // interned strings past the first len(small)
	scratch []byte            // builds names before interning
}

const (
	smallIntern  = 16   // strings searched linearly before the map is used
	maxIntern    = 4096 // strings interned per call; later ones are allocated
	maxInternLen = 128  // longer strings are rarely repeated: never interned
)

// reset readies a Decoder's state for a new exchange, keeping its memory.
// Interned strings are per exchange, as with a fresh state.
func (st *state) reset(spec *Spec) {
	st.spec = spec
	clear(st.small[:st.nsmall])
	st.nsmall = 0
	clear(st.table)
	st.scratch = st.scratch[:0]
}

// intern returns b as a string, shared with earlier equal ones.
func (st *state) intern(b []byte) string {
	if len(b) > maxInternLen {
		return string(b)
	}
	for _, s := range st.small[:st.nsmall] {
		if s == string(b) {
			return s
		}
	}
	if s, ok := st.table[string(b)]; ok {
		return s
	}
	s := string(b)
	switch {
	case st.nsmall < smallIntern:
		st.small[st.nsmall] = s
		st.nsmall++
	case len(st.table) < maxIntern:
		if st.table == nil {
			st.table = make(map[string]string)
		}
		st.table[s] = s
	}
	return s
}

// indexed is the name base[k].
func (st *state) indexed(base string, k int) string {
	b := append(st.scratch[:0], base...)
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(k), 10)
	b = append(b, ']')
	st.scratch = b
	return st.intern(b)
}

// column is the name of column j of a list row: spec.Features[j], else
// f<j>.
func (st *state) column(j int) string {
	if j < len(st.spec.Features) {
		return st.spec.Features[j]
	}
	b := append(st.scratch[:0], 'f')
	b = strconv.AppendInt(b, int64(j), 10)
	st.scratch = b
	return st.intern(b)
}

// keyName is the name of an object member: prefix followed by the
// unquoted key. ok is false for a key that does not unquote.
func (st *state) keyName(prefix string, key []byte) (string, bool) {
	if len(key) < 2 {
		return "", false
	}
	inner := key[1 : len(key)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		var s string
		if json.Unmarshal(key, &s) != nil {
			return "", false
		}
		inner = []byte(s)
	}
	if prefix == "" {
		return st.intern(inner), true
	}
	b := append(st.scratch[:0], prefix...)
	b = append(b, inner...)
	st.scratch = b
	return st.intern(b), true
}

// num is a numeric value; ok is false for NaN and infinities, which are
// never produced.
func num(f float64) (Value, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Value{}, false
	}
	return Value{Num: f}, true
}

func cat(s string) Value { return Value{Cat: s, IsCat: true} }
