package decode

// Row-shaped JSON, shared by KServe V1, TF Serving and MLflow: a list of
// instances (one row each), or a column-format object (one column each).

// prediction names a scalar prediction; vectors are prediction[k], object
// members prediction.<key>.
const (
	prediction       = "prediction"
	predictionPrefix = "prediction."
)

// maxReserve bounds the fields reserved ahead from an estimate, which a
// small first row can inflate; beyond it fields grow by appending.
const maxReserve = 1 << 12

// appendInstance appends the features of one instance: the leaves of a
// list, row-major, named by column index (spec.Features, else f<j>); a
// scalar is column 0; an object's members are named by key; a {"b64": ...}
// instance has none.
func (st *state) appendInstance(fs []Field, v []byte) []Field {
	if len(v) > 0 && v[0] == '{' {
		return st.appendMembers(fs, v, "")
	}
	it := leaves(v)
	j := 0
	for leaf, ok := it.next(); ok; leaf, ok = it.next() {
		if val, ok := st.scalar(leaf); ok {
			fs = append(fs, Field{Name: st.column(j), Value: val})
		}
		j++
	}
	return fs
}

// appendMembers appends the members of object v, each named prefix+key by
// appendNamed. A b64 object has none.
func (st *state) appendMembers(fs []Field, v []byte, prefix string) []Field {
	if isB64(v) {
		return fs
	}
	it := members(v)
	for k, val, ok := it.next(); ok; k, val, ok = it.next() {
		if isNull(val) || val[0] == '{' {
			continue // nested objects (b64 included) are skipped
		}
		if name, ok := st.keyName(prefix, k); ok {
			fs = st.appendNamed(fs, val, name)
		}
	}
	return fs
}

// appendNamed appends value v named name when a scalar, name[k] for the
// leaves of a list (row-major); objects are skipped.
func (st *state) appendNamed(fs []Field, v []byte, name string) []Field {
	if len(v) == 0 || v[0] == '{' {
		return fs
	}
	if v[0] != '[' {
		if val, ok := st.scalar(v); ok {
			fs = append(fs, Field{Name: name, Value: val})
		}
		return fs
	}
	it := leaves(v)
	k := 0
	for leaf, ok := it.next(); ok; leaf, ok = it.next() {
		if val, ok := st.scalar(leaf); ok {
			fs = append(fs, Field{Name: st.indexed(name, k), Value: val})
		}
		k++
	}
	return fs
}

// appendPrediction appends one row's prediction: a scalar is prediction, a
// list's leaves prediction[k], an object's members prediction.<key> (and
// prediction.<key>[k] for lists).
func (st *state) appendPrediction(fs []Field, v []byte) []Field {
	if len(v) > 0 && v[0] == '{' {
		return st.appendMembers(fs, v, predictionPrefix)
	}
	return st.appendNamed(fs, v, prediction)
}

// instances appends one row per element of the list v: features, or, on
// the response side, predictions.
func (st *state) instances(s *sink, v []byte) error {
	if len(v) == 0 || v[0] != '[' {
		return malformed("rows are not a list")
	}
	it := elems(v)
	for e, ok := it.next(); ok; e, ok = it.next() {
		if s.pred {
			s.fields = st.appendPrediction(s.fields, e)
		} else {
			s.fields = st.appendInstance(s.fields, e)
		}
		if s.n == 0 {
			// Reserve for the rest, guessing rows from the first one's size.
			est := len(v) / (len(e) + 1) * (len(s.fields) - s.start)
			s.reserve(min(est, maxReserve))
		}
		s.endRow()
	}
	return nil
}

// column is one column of a column-format object.
type column struct {
	name   string
	it     arrayIter // over the rows, for a list
	scalar []byte    // a value that applies to every row, when not a list
}

// columns appends the rows of the column-format object v: each member is a
// column holding one element per row, named by key (prefix+key on the
// response side); a scalar member applies to every row. The row count is
// the longest column's; shorter columns leave later rows without them. A
// single column of lists is one tensor of rows instead: its leaves are
// named by column index like a list instance (features side only).
func (st *state) columns(s *sink, v []byte, prefix string) error {
	var cols []column
	nlist := 0
	it := members(v)
	for k, val, ok := it.next(); ok; k, val, ok = it.next() {
		if isNull(val) || val[0] == '{' {
			continue
		}
		name, ok := st.keyName(prefix, k)
		if !ok {
			return malformed("bad column name")
		}
		c := column{name: name}
		if val[0] == '[' {
			c.it = elems(val)
			nlist++
		} else {
			c.scalar = val
		}
		cols = append(cols, c)
	}
	single := !s.pred && len(cols) == 1 && nlist == 1 && firstIsList(cols[0].it.b)
	for {
		more := false
		for i := range cols {
			c := &cols[i]
			if c.scalar != nil {
				continue
			}
			e, ok := c.it.next()
			if !ok {
				continue
			}
			more = true
			if single {
				s.fields = st.appendInstance(s.fields, e)
			} else {
				s.fields = st.appendNamed(s.fields, e, c.name)
			}
		}
		if !more && nlist > 0 {
			return nil
		}
		for i := range cols {
			if c := &cols[i]; c.scalar != nil {
				s.fields = st.appendNamed(s.fields, c.scalar, c.name)
			}
		}
		s.endRow()
		if nlist == 0 {
			return nil
		}
	}
}

// firstIsList reports whether the list v's first element is a list.
func firstIsList(v []byte) bool {
	it := elems(v)
	e, ok := it.next()
	return ok && e[0] == '['
}
