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
