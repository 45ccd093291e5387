package decode

import "strconv"

// TF Serving's :classify and :regress verbs. The request is
//
//	{"signature_name": "...", "context": {"lang": "en"},
//	 "examples": [{"age": 30, "tags": ["a", "b"]}, ...]}
//
// and each example is a row whose features are the context's members and
// then its own (age, tags[0], tags[1], lang...). :regress answers
// {"results": [3.5, ...]}, one prediction per example; :classify answers
// {"results": [[["cat", 0.3], ["dog", 0.7]], ...]}, one list of
// [label, score] pairs per example, which becomes prediction (the label
// with the highest score, categorical) and prediction.<label> (its score).

// examples appends one row per element of the examples list.
func (st *state) examples(s *sink, list, context []byte) error {
	if list[0] != '[' {
		return malformed("examples is not a list")
	}
	if context != nil && context[0] != '{' && !isNull(context) {
		return malformed("context is not an object")
	}
	it := elems(list)
	for e, ok := it.next(); ok; e, ok = it.next() {
		if e[0] != '{' {
			return malformed("example " + strconv.Itoa(s.n) + " is not an object")
		}
		if context != nil && context[0] == '{' {
			s.fields = st.appendMembers(s.fields, context, "")
		}
		s.fields = st.appendMembers(s.fields, e, "")
		s.endRow()
	}
	return nil
}

// results appends one row per element of a :classify or :regress results
// list.
func (st *state) results(s *sink, list []byte) error {
	if list[0] != '[' {
		return malformed("results is not a list")
	}
	it := elems(list)
	for e, ok := it.next(); ok; e, ok = it.next() {
		var classified bool
		if s.fields, classified = st.appendClasses(s.fields, e); !classified {
			s.fields = st.appendPrediction(s.fields, e)
		}
		s.endRow()
	}
	return nil
}

// appendClasses appends a :classify result, a non-empty list of
// [label, score] pairs. ok is false, with fs unchanged, for any other
// shape.
func (st *state) appendClasses(fs []Field, v []byte) ([]Field, bool) {
	if len(v) == 0 || v[0] != '[' {
		return fs, false
	}
	start := len(fs)
	var top string
	found, best := false, 0.0
	it := elems(v)
	for pair, ok := it.next(); ok; pair, ok = it.next() {
		label, score, ok := classPair(pair)
		if !ok {
			return fs[:start], false
		}
		name, ok := st.keyName(predictionPrefix, label)
		if !ok {
			return fs[:start], false
		}
		val, finite := num(score)
		if !finite {
			continue
		}
		fs = append(fs, Field{Name: name, Value: val})
		if !found || score > best {
			top, _ = st.str(label)
			found, best = true, score
		}
	}
	if !found {
		return fs[:start], false
	}
	return append(fs, Field{Name: prediction, Value: cat(top)}), true
}

// classPair splits ["label", score].
func classPair(v []byte) (label []byte, score float64, ok bool) {
	if len(v) == 0 || v[0] != '[' {
		return nil, 0, false
	}
	it := elems(v)
	label, ok1 := it.next()
	s, ok2 := it.next()
	_, more := it.next()
	if !ok1 || !ok2 || more || label[0] != '"' || s[0] == '"' || s[0] == '[' || s[0] == '{' {
		return nil, 0, false
	}
	f, ok := number(s)
	return label, f, ok
}
