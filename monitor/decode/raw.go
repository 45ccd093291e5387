package decode

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// raw: any JSON. Each entry of spec.Paths names a feature by a dot path
// into the request ("inputs.0.x": object keys, and numbers indexing lists
// — a number indexes an object by key); spec.PredictionPath is the path
// of the prediction in the response. A path that leads nowhere, or to a
// list, an object or null, gives no value: optional fields stay optional.
// Keys containing dots cannot be named. One row per exchange, its
// features sorted by name.

func rawRequest(st *state, s *sink, in *Input) error {
	if len(st.spec.Paths) == 0 {
		s.endRow() // the row the prediction joins
		return nil
	}
	body, err := validJSON(in.ReqBody)
	if err != nil {
		return err
	}
	for name, path := range st.spec.Paths {
		if v, ok := st.scalar(at(body, path)); ok {
			s.fields = append(s.fields, Field{Name: name, Value: v})
		}
	}
	slices.SortFunc(s.fields, func(a, b Field) int { return cmp.Compare(a.Name, b.Name) })
	s.endRow()
	return nil
}

func rawResponse(st *state, s *sink, in *Input) error {
	if st.spec.PredictionPath == "" {
		return nil
	}
	body, err := validJSON(in.RespBody)
	if err != nil {
		return err
	}
	if v, ok := st.scalar(at(body, st.spec.PredictionPath)); ok {
		s.fields = append(s.fields, Field{Name: prediction, Value: v})
	}
	s.endRow()
	return nil
}

// validJSON returns body, trimmed, when it is valid JSON.
func validJSON(body []byte) ([]byte, error) {
	body = trimWS(body)
	if !jsonValid(body) {
		return nil, malformed("invalid JSON")
	}
	return body, nil
}

// at returns the value at the dot path in v, or nil; the empty path is v.
func at(v []byte, path string) []byte {
	if path == "" {
		return v
	}
	for {
		seg, rest, more := strings.Cut(path, ".")
		switch {
		case len(v) == 0:
			return nil
		case v[0] == '{':
			v = lookup(v, seg)
		case v[0] == '[':
			v = nth(v, seg)
		default:
			return nil
		}
		if !more || v == nil {
			return v
		}
		path = rest
	}
}

// nth returns element seg (a decimal index) of the list v, or nil.
func nth(v []byte, seg string) []byte {
	n, err := strconv.Atoi(seg)
	if err != nil || n < 0 || seg[0] == '+' {
		return nil
	}
	it := elems(v)
	for e, ok := it.next(); ok; e, ok = it.next() {
		if n == 0 {
			return e
		}
		n--
	}
	return nil
}
