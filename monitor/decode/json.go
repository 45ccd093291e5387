package decode

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// JSON bodies are checked once with jsonValid (json.Valid's answer, in
// less time); their parts, which vary in shape (rows, columns, tensors, stream chunks), are then walked in place
// by the iterators below, which slice values out of the validated bytes
// without decoding what is skipped, and encoding/json only unquotes the
// strings that hold escapes. On invalid input the walkers stop early; they
// never panic and always make progress.

// skipWS returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// trimWS trims JSON whitespace from both ends of b.
func trimWS(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}

// stringEnd returns the index just past the string starting at b[i] (a
// quote), or -1 when it does not end.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// valueEnd returns the index just past the value starting at b[i], or -1
// when none does.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := stringEnd(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	case ',', ':', '}', ']':
		return -1
	default:
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				return j
			}
			j++
		}
		return j
	}
}

// arrayIter yields the elements of a JSON array.
type arrayIter struct {
	b []byte
	i int
}

// elems iterates the array v, which starts with '['.
func elems(v []byte) arrayIter { return arrayIter{b: v, i: 1} }

func (it *arrayIter) next() ([]byte, bool) {
	b := it.b
	i := skipWS(b, it.i)
	if i < len(b) && b[i] == ',' {
		i = skipWS(b, i+1)
	}
	e := valueEnd(b, i)
	if e <= i {
		it.i = len(b)
		return nil, false
	}
	it.i = e
	return b[i:e], true
}

// objectIter yields the members of a JSON object; keys keep their quotes.
type objectIter struct {
	b []byte
	i int
}

// members iterates the object v, which starts with '{'.
func members(v []byte) objectIter { return objectIter{b: v, i: 1} }

func (it *objectIter) next() (key, val []byte, ok bool) {
	b := it.b
	i := skipWS(b, it.i)
	if i < len(b) && b[i] == ',' {
		i = skipWS(b, i+1)
	}
	it.i = len(b) // unless all goes well
	if i >= len(b) || b[i] != '"' {
		return nil, nil, false
	}
	ke := stringEnd(b, i)
	if ke < 0 {
		return nil, nil, false
	}
	j := skipWS(b, ke)
	if j >= len(b) || b[j] != ':' {
		return nil, nil, false
	}
	j = skipWS(b, j+1)
	e := valueEnd(b, j)
	if e <= j {
		return nil, nil, false
	}
	it.i = e
	return b[i:ke], b[j:e], true
}

// leafIter yields the leaves of a value in row-major order: the scalars of
// a list and of the lists nested in it; an object is one leaf; a scalar
// yields itself.
type leafIter struct {
	b []byte
	i int
}

func leaves(v []byte) leafIter { return leafIter{b: v} }

func (it *leafIter) next() ([]byte, bool) {
	b := it.b
	for it.i < len(b) {
		switch b[it.i] {
		case '[', ']', ',', ' ', '\t', '\n', '\r':
			it.i++
		default:
			e := valueEnd(b, it.i)
			if e <= it.i {
				it.i = len(b)
				return nil, false
			}
			v := b[it.i:e]
			it.i = e
			return v, true
		}
	}
	return nil, false
}

// keyIs reports whether the quoted key equals name.
func keyIs(key []byte, name string) bool {
	if len(key) == len(name)+2 && string(key[1:len(key)-1]) == name {
		return true
	}
	if bytes.IndexByte(key, '\\') < 0 {
		return false
	}
	var s string
	return json.Unmarshal(key, &s) == nil && s == name
}

// lookup returns the value of key in object v, or nil.
func lookup(v []byte, key string) []byte {
	if len(v) == 0 || v[0] != '{' {
		return nil
	}
	it := members(v)
	for k, val, ok := it.next(); ok; k, val, ok = it.next() {
		if keyIs(k, key) {
			return val
		}
	}
	return nil
}

// isB64 reports whether v is {"b64": ...}, a binary value, which is skipped.
func isB64(v []byte) bool {
	if len(v) == 0 || v[0] != '{' {
		return false
	}
	it := members(v)
	k, _, ok := it.next()
	if !ok || !keyIs(k, "b64") {
		return false
	}
	_, _, more := it.next()
	return !more
}

// isNull reports whether v is absent or null.
func isNull(v []byte) bool {
	return len(v) == 0 || (len(v) == 4 && string(v) == "null")
}

// str returns the quoted JSON string v unquoted, interned.
func (st *state) str(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return st.intern(inner), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return st.intern([]byte(s)), true
}

// runes counts the characters of the quoted JSON string v; ok is false
// when v is not a string.
func runes(v []byte) (int, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return 0, false
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return utf8.RuneCount(inner), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return 0, false
	}
	return utf8.RuneCountInString(s), true
}

// scalar decodes a JSON leaf: numbers are numeric, strings categorical,
// booleans categorical "true"/"false". ok is false for null, objects
// (b64 included), lists, and numbers beyond float64's range.
func (st *state) scalar(v []byte) (Value, bool) {
	if len(v) == 0 {
		return Value{}, false
	}
	switch v[0] {
	case '"':
		s, ok := st.str(v)
		return cat(s), ok
	case 't':
		return cat("true"), string(v) == "true"
	case 'f':
		return cat("false"), string(v) == "false"
	case 'n', '{', '[':
		return Value{}, false
	}
	f, ok := number(v)
	return Value{Num: f}, ok
}

// number parses the JSON number v; ok is false for anything else and for
// numbers beyond float64's range.
func number(v []byte) (float64, bool) {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return 0, false
	}
	if f, ok := shortNumber(v); ok {
		return f, true
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return 0, false
	}
	_, ok := num(f)
	return f, ok
}

// exactPow10 are the powers of ten a float64 holds exactly.
var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
	1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// shortNumber parses the common JSON number — at most 15 significant
// digits, an optional fraction and exponent whose combined power of ten is
// within ±22 — with one multiplication or division of two exactly
// represented values, which IEEE rounds correctly: the same float64 that
// strconv.ParseFloat gives (Clinger's fast path, which strconv takes too
// after more general work). ok is false for anything else, which the
// caller hands to strconv. v is a valid JSON number.
func shortNumber(v []byte) (float64, bool) {
	i, neg := 0, false
	if v[0] == '-' {
		neg, i = true, 1
	}
	var m uint64
	digits, exp := 0, 0
	for ; i < len(v) && '0' <= v[i] && v[i] <= '9'; i++ {
		m = m*10 + uint64(v[i]-'0')
		if m != 0 {
			digits++
		}
	}
	if i < len(v) && v[i] == '.' {
		for i++; i < len(v) && '0' <= v[i] && v[i] <= '9'; i++ {
			m = m*10 + uint64(v[i]-'0')
			if m != 0 {
				digits++
			}
			exp--
		}
	}
	if digits > 15 {
		return 0, false
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		eneg := false
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			eneg = v[i] == '-'
			i++
		}
		e := 0
		for ; i < len(v) && '0' <= v[i] && v[i] <= '9'; i++ {
			if e > 1000 {
				return 0, false
			}
			e = e*10 + int(v[i]-'0')
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if i != len(v) || exp < -22 || exp > 22 {
		return 0, false
	}
	f := float64(m) // exact: m < 10^15 < 2^53
	if exp < 0 {
		f /= exactPow10[-exp]
	} else {
		f *= exactPow10[exp]
	}
	if neg {
		f = -f
	}
	return f, true
}
