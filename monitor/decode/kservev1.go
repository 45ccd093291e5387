package decode

// KServe V1 and TF Serving REST share one decoder: the row format
// ({"instances": [...]} → {"predictions": [...]}), TF Serving's column
// format ({"inputs": ...} → {"outputs": ...}) and its :classify and
// :regress verbs ({"examples": [...]} → {"results": [...]}).

// jsonObject returns body, trimmed, when it is one valid JSON object.
func jsonObject(body []byte) ([]byte, error) {
	body = trimWS(body)
	if !jsonValid(body) {
		return nil, malformed("invalid JSON")
	}
	if body[0] != '{' {
		return nil, malformed("not a JSON object")
	}
	return body, nil
}

func v1Request(st *state, s *sink, in *Input) error {
	if st.flatRows(s, in.ReqBody, `"instances"`) {
		return nil
	}
	return v1RequestAny(st, s, in)
}

// v1RequestAny decodes every request form.
func v1RequestAny(st *state, s *sink, in *Input) error {
	body, err := jsonObject(in.ReqBody)
	if err != nil {
		return err
	}
	var instances, inputs, examples, context []byte
	it := members(body)
	for k, v, ok := it.next(); ok; k, v, ok = it.next() {
		switch {
		case keyIs(k, "instances"):
			instances = v
		case keyIs(k, "inputs"):
			inputs = v
		case keyIs(k, "examples"):
			examples = v
		case keyIs(k, "context"):
			context = v
		}
	}
	switch {
	case countSet(instances, inputs, examples) > 1:
		return malformed("more than one of instances, inputs and examples")
	case instances != nil:
		return st.instances(s, instances)
	case inputs != nil:
		switch inputs[0] {
		case '[':
			return st.instances(s, inputs)
		case '{':
			return st.columns(s, inputs, "")
		}
		return malformed("inputs is neither a list nor an object")
	case examples != nil:
		return st.examples(s, examples, context)
	}
	return malformed("no instances, inputs or examples")
}

func v1Response(st *state, s *sink, in *Input) error {
	if st.flatRows(s, in.RespBody, `"predictions"`) {
		return nil
	}
	return v1ResponseAny(st, s, in)
}

// v1ResponseAny decodes every response form.
func v1ResponseAny(st *state, s *sink, in *Input) error {
	body, err := jsonObject(in.RespBody)
	if err != nil {
		return err
	}
	var predictions, outputs, results []byte
	it := members(body)
	for k, v, ok := it.next(); ok; k, v, ok = it.next() {
		switch {
		case keyIs(k, "predictions"):
			predictions = v
		case keyIs(k, "outputs"):
			outputs = v
		case keyIs(k, "results"):
			results = v
		}
	}
	switch {
	case predictions != nil:
		return st.instances(s, predictions)
	case outputs != nil:
		switch outputs[0] {
		case '[':
			return st.instances(s, outputs)
		case '{':
			return st.columns(s, outputs, predictionPrefix)
		}
		s.fields = st.appendPrediction(s.fields, outputs) // a scalar output
		s.endRow()
		return nil
	case results != nil:
		return st.results(s, results)
	}
	return malformed("no predictions, outputs or results")
}

// countSet counts the non-nil values.
func countSet(vs ...[]byte) int {
	n := 0
	for _, v := range vs {
		if v != nil {
			n++
		}
	}
	return n
}

// flatRows is the fast path for the commonest exchange, {"instances":
// [[6.8, 2.8], ...]} answered by {"predictions": [1, ...]}: an object whose
// only member is key (quoted, as it appears in body) holding a list of
// rows, each a number or a flat list of numbers. It checks the grammar of
// everything it reads as it reads it, in one pass, and when body is
// anything else — other members, strings, nesting, escapes, bad JSON — it
// takes back what it appended and returns false, and the general path
// decodes body from the start. What it accepts, it decodes exactly as the
// general path would (FuzzFlatRows compares the two); it only skips the
// separate validation pass and the iterators' second look at each value.
func (st *state) flatRows(s *sink, body []byte, key string) bool {
	mark := s.save()
	if !st.flatRowsScan(s, body, key) {
		s.restore(mark)
		return false
	}
	return true
}

func (st *state) flatRowsScan(s *sink, b []byte, key string) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	if len(b)-i < len(key) || string(b[i:i+len(key)]) != key {
		return false
	}
	i = skipWS(b, i+len(key))
	if i >= len(b) || b[i] != ':' {
		return false
	}
	i = skipWS(b, i+1)
	if i >= len(b) || b[i] != '[' {
		return false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		i++
	} else {
		for {
			var ok bool
			if i < len(b) && b[i] == '[' {
				i, ok = st.flatRow(s, b, i+1)
			} else {
				i, ok = st.flatScalar(s, b, i)
			}
			if !ok {
				return false
			}
			s.endRow()
			i = skipWS(b, i)
			if i >= len(b) {
				return false
			}
			if b[i] == ']' {
				i++
				break
			}
			if b[i] != ',' {
				return false
			}
			i = skipWS(b, i+1)
		}
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != '}' {
		return false
	}
	return skipWS(b, i+1) == len(b)
}

// flatRow reads the numbers of a list row from b[i:], just past its '[',
// up to and including its ']'.
func (st *state) flatRow(s *sink, b []byte, i int) (int, bool) {
	i = skipWS(b, i)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for j := 0; ; j++ {
		end := numberEnd(b, i)
		if end < 0 {
			return 0, false
		}
		if f, ok := number(b[i:end]); ok {
			name := ""
			if s.pred {
				name = st.indexed(prediction, j)
			} else {
				name = st.column(j)
			}
			s.fields = append(s.fields, Field{Name: name, Value: Value{Num: f}})
		}
		i = skipWS(b, end)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == ']' {
			return i + 1, true
		}
		if b[i] != ',' {
			return 0, false
		}
		i = skipWS(b, i+1)
	}
}

// flatScalar reads a row that is one number.
func (st *state) flatScalar(s *sink, b []byte, i int) (int, bool) {
	end := numberEnd(b, i)
	if end < 0 {
		return 0, false
	}
	if f, ok := number(b[i:end]); ok {
		name := prediction
		if !s.pred {
			name = st.column(0)
		}
		s.fields = append(s.fields, Field{Name: name, Value: Value{Num: f}})
	}
	return end, true
}

// numberEnd returns the index just past the JSON number at b[i], or -1
// when none starts there (the grammar of RFC 8259 §6, nothing looser).
func numberEnd(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digitsEnd(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		e := digitsEnd(b, i+1)
		if e == i+1 {
			return -1
		}
		i = e
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		e := digitsEnd(b, i)
		if e == i {
			return -1
		}
		i = e
	}
	return i
}
