// Package decode turns one sampled request/response exchange of a model
// backend into rows of features and predictions for the drift monitor.
// Decode dispatches on the model's protocol; every decoder follows the
// same rules:
//
//   - Values: JSON numbers are numeric (float64); strings and booleans
//     ("true", "false") are categorical; null, {"b64": ...} binary values,
//     nested objects, NaN, infinities and numbers beyond float64 are
//     skipped (a skipped list element still takes its index).
//   - Rows pair by index: request row i gets response row i's predictions.
//     When the counts differ, pairing stops at the shorter side: request
//     rows without an answer keep no predictions, answers without a
//     request row are dropped. Without a request body (not sampled) the
//     response's rows stand alone. A response that is not 2xx yields no
//     predictions. A request row whose values were all skipped still
//     takes its answer; rows left with nothing at all are dropped.
//   - Errors wrap ErrMalformed, name the protocol, side and reason, and
//     never quote the payload. On error no rows are added.
//
// Names, per protocol:
//
// kserve-v1 and tfserving (one decoder; both accept every form). A list
// instance ({"instances": [[6.8, 2.8], ...]} or {"inputs": [[...]]}) is
// flattened row-major and its leaf j named spec.Features[j], else f<j>; a
// scalar instance is column 0. An object instance ({"sepal_length": 6.8})
// names its members by key, and a list member x gives x[0], x[1], ... The
// column format {"inputs": {"x": [...], "y": [...]}} holds one column per
// member, element i of each belonging to row i, named like object members
// (a scalar member applies to every row); an object with a single member
// whose rows are lists is one tensor, named like list instances. TF
// Serving's {"examples": [...]} (:classify, :regress) rows are objects,
// each preceded by the members of "context". Predictions: each element of
// "predictions" (or of a list "outputs", or of "results") is a row: a
// scalar is prediction, a list prediction[k] (row-major), an object's
// members prediction.<key> (prediction.<key>[k] for lists); column-format
// "outputs" name their columns prediction.<name>. A :classify result, a
// list of [label, score] pairs, gives prediction (the top label,
// categorical) and prediction.<label> (each score).
//
// kserve-v2 (Open Inference Protocol, Triton). A tensor of shape [N, d1,
// d2, ...] is N rows of d1·d2·... columns, its data row-major (flat or
// nested; the element count must match the shape). A single input names
// its columns spec.Features[j], else <name> when it has one column, else
// <name>[j]; several inputs name theirs <name> or <name>[j] alike, so
// inputs of shape [N] or [N,1] are one feature each. Outputs likewise: a
// single output is prediction ([N] or [N,1]) or prediction[k] ([N,K]);
// several are <name> or <name>[k]. JSON data decode by their JSON type
// (BYTES strings are categorical, BOOL true/false too). With Triton's
// binary extension
// (Input.InferenceHeaderLen, RespInferenceHeaderLen >= 0) only the header
// is JSON and the tensors with parameters.binary_data_size follow as raw
// little-endian data: BOOL (categorical), INT8..INT64, UINT8..UINT64,
// FP16, BF16, FP32, FP64, and BYTES as 4-byte length-prefixed strings
// (categorical). Every size is checked against the shape and the bytes
// present; leftover bytes are an error.
//
// mlflow. dataframe_split names cell j by columns[j], else like list
// instances' leaves (a list cell x gives x[k]); dataframe_records,
// instances and inputs follow the kserve-v1 rules for rows and columns.
// A text/csv request's header line names the columns; cells that parse as
// numbers are numeric, other non-empty ones categorical. Predictions
// ({"predictions": [...]}, a bare list, or {"predictions": {"col": [...]}})
// follow the kserve-v1 rules.
//
// openai (completions and chat completions, JSON or text/event-stream).
// One row per exchange. Features: model (categorical, from the request),
// prompt_chars (characters of the prompt, or of the messages' text
// contents; absent for token-id prompts), prompt_tokens and
// completion_tokens (from usage, in the answer or the stream's usage chunk;
// absent without it), finish_reason (categorical, choice 0), ttfb_seconds
// and latency_seconds (from Input, absent when zero). Prediction:
// completion_chars, the characters of all choices' reassembled text.
//
// raw. Features named by spec.Paths, each a dot path to a scalar in the
// request ("inputs.0.x"); the prediction is the scalar at
// spec.PredictionPath in the response, named prediction. One row.
//
// grpc. The bodies are gRPC messages (5-byte prefix; a compressed one is
// an error) read from the protobuf wire format, and Input.Path, the gRPC
// method, picks the decoder: /inference.GRPCInferenceService/ModelInfer
// (KServe V2, Triton) names and shapes rows as kserve-v2 does, its
// elements from each tensor's typed contents or from raw_input_contents /
// raw_output_contents (little-endian, like Triton's binary extension);
// /tensorflow.serving.PredictionService/Predict's input and output maps
// follow the tfserving column format (outputs prediction.<key>), values
// from the typed fields or tensor_content, a single value broadcast to
// its shape. Any other method yields no rows and no error. See grpc.go.
//
// Characters are Unicode code points. JSON bodies are validated once
// (jsonValid, a faster json.Valid) and then walked in place, without decoding what is not
// used, so a row costs its fields and little else (see BenchmarkDecode);
// only the openai request, one per exchange, is decoded into a struct.
// Rows never alias the Input's bodies.
package decode

import (
	"errors"
	"fmt"
	"time"

	"github.com/vaneproxy/vane/configs"
)

// Value is one feature or prediction value: numeric (Num) or categorical
// (Cat, with IsCat set). Num is never NaN or infinite.
type Value struct {
	Num   float64
	Cat   string
	IsCat bool
}

// Field is a named value.
type Field struct {
	Name  string
	Value Value
}

// Row is one inference row: its input features and its predictions, paired
// by index. Either may be empty, never both.
type Row struct {
	Features    []Field
	Predictions []Field
}

// Input is one sampled exchange. Decode only reads it, and the rows it
// returns never alias its bodies, so the caller may reuse them at once.
type Input struct {
	// Path is the request path (e.g. "/v2/models/iris/infer").
	Path string
	// ReqContentType and RespContentType are the Content-Type headers; only
	// mlflow (text/csv requests) and openai (text/event-stream answers)
	// look at them.
	ReqContentType, RespContentType string
	// ReqBody and RespBody are the bodies; empty means not sampled. The
	// RespBody of an SSE answer is the raw event stream.
	ReqBody, RespBody []byte
	// InferenceHeaderLen is the value of the request's
	// Inference-Header-Content-Length header (Triton's binary tensor
	// extension), -1 when absent.
	InferenceHeaderLen int
	// RespInferenceHeaderLen is the same for the response, -1 when absent.
	RespInferenceHeaderLen int
	// Status is the upstream status; a response that is not 2xx (0
	// included) yields features but no predictions.
	Status int
	// TTFB and Latency feed openai's derived features; zero means unknown.
	TTFB, Latency time.Duration
}

// Spec is the per-model decoding config.
type Spec struct {
	// Protocol selects the decoder; empty means raw, as in the config.
	Protocol configs.Protocol
	// Features name, by index, the columns of list-shaped rows and of a
	// single kserve-v2 input; columns past its end are named f<j> (or
	// after the input).
	Features []string
	// Paths name raw features by a dot path into the request JSON.
	Paths map[string]string
	// PredictionPath is the dot path of raw's prediction in the response
	// JSON; empty means none.
	PredictionPath string
}

// ErrMalformed wraps every decode failure: errors.Is(err, ErrMalformed).
// The error text names the protocol, the side and the reason, never the
// payload's contents.
var ErrMalformed = errors.New("malformed payload")

// Decode appends the rows of in to dst and returns it. On error it returns
// dst unchanged (no partial rows) and an error wrapping ErrMalformed; only
// an unknown spec.Protocol gives an error that does not wrap it. Decode is
// safe for concurrent use; its rows are the caller's to keep. A caller
// that decodes exchange after exchange uses a Decoder instead.
func Decode(dst []Row, spec *Spec, in *Input) ([]Row, error) {
	return new(Decoder).Decode(dst, spec, in)
}

// Decoder decodes exchange after exchange into memory it keeps: the fields
// of the rows it returns live in its buffers and are valid only until its
// next Decode. Flat KServe V1 rows and raw paths then decode without
// allocating; other forms still allocate the names they intern (interning
// is per exchange) and some per-call scratch (BenchmarkDecode: 4-17
// allocations for one row of the other forms).
// The rows follow Decode's rules otherwise. A Decoder is not safe for
// concurrent use; each monitor worker has its own. The zero value is
// ready.
type Decoder struct {
	st     state
	s      sink
	fields [2][]Field // the request side's and the response side's
}

// Decode is the package's Decode, with the Decoder's buffers.
func (d *Decoder) Decode(dst []Row, spec *Spec, in *Input) ([]Row, error) {
	st, _ := d.start(dst, spec, in)
	name := spec.Protocol
	var request, response func(*state, *sink, *Input) error
	switch name {
	case configs.ProtocolKServeV1, configs.ProtocolTFServing:
		request, response = v1Request, v1Response
	case configs.ProtocolKServeV2:
		request, response = v2Request, v2Response
	case configs.ProtocolMLflow:
		request, response = mlflowRequest, mlflowResponse
	case configs.ProtocolRaw, "":
		name, request, response = configs.ProtocolRaw, rawRequest, rawResponse
	case configs.ProtocolOpenAI:
		// One row per exchange, its features drawn from both sides.
		row, err := openAIRow(st, in)
		if err != nil {
			return dst, fmt.Errorf("%s: %w", name, err)
		}
		if len(row.Features) == 0 && len(row.Predictions) == 0 {
			return dst, nil
		}
		return append(dst, row), nil
	case configs.ProtocolGRPC:
		var ok bool
		if request, response, ok = grpcDecoders(in.Path); !ok {
			return dst, nil // a method that carries no tensors
		}
	default:
		return dst, fmt.Errorf("decode: unknown protocol %q", name)
	}
	return d.sides(dst, name, in, request, response)
}

// start readies the Decoder's state and sink for one exchange.
func (d *Decoder) start(dst []Row, spec *Spec, in *Input) (*state, *sink) {
	d.st.reset(spec)
	d.s = sink{
		rows:    dst,
		base:    len(dst),
		hasReq:  len(in.ReqBody) > 0,
		hasResp: in.Status >= 200 && in.Status <= 299 && len(in.RespBody) > 0,
		fields:  d.fields[0][:0],
		arena:   &d.fields,
	}
	return &d.st, &d.s
}

// sides runs a protocol's request and response decoders on the sink that
// Decode set up.
func (d *Decoder) sides(dst []Row, name configs.Protocol, in *Input, request, response func(*state, *sink, *Input) error) ([]Row, error) {
	st, s := &d.st, &d.s
	if s.hasReq {
		if err := request(st, s, in); err != nil {
			return s.fail(dst), fmt.Errorf("%s: request: %w", name, err)
		}
	}
	s.commit()
	if s.hasResp {
		if err := response(st, s, in); err != nil {
			return s.fail(dst), fmt.Errorf("%s: response: %w", name, err)
		}
	}
	return s.finish(), nil
}

// malformed is the error for reason; reason is fixed text, never payload.
func malformed(reason string) error {
	return fmt.Errorf("%s: %w", reason, ErrMalformed)
}

// sink collects the rows of one exchange into dst: first the request side
// (one row per request row), then the response side, whose rows pair by
// index with the request's. Decoders append a row's fields to fields and
// call endRow. Rows are sliced from one backing array per side; until
// commit, a row's slice only records its length, since fields may still
// move when it grows.
type sink struct {
	rows    []Row
	base    int  // len(dst) on entry: this exchange's rows start here
	hasReq  bool // the request body is present: it decides the row count
	hasResp bool // the response body is present and 2xx
	reqRows int  // rows the request side produced
	pred    bool // the response side is being filled
	fields  []Field
	start   int // offset in fields of the row being built
	n       int // rows of the current side so far
	// arena keeps each side's fields array for the Decoder's next call.
	arena *[2][]Field
}

// reserve grows fields to hold n more.
func (s *sink) reserve(n int) {
	if n > cap(s.fields)-len(s.fields) {
		grown := make([]Field, len(s.fields), len(s.fields)+n)
		copy(grown, s.fields)
		s.fields = grown
	}
}

// sinkMark is what save records for restore.
type sinkMark struct{ rows, fields, start, n int }

// save records the sink's state, for a decoder that may take back what it
// appends (a fast path that finds its input is not for it).
func (s *sink) save() sinkMark {
	return sinkMark{rows: len(s.rows), fields: len(s.fields), start: s.start, n: s.n}
}

// restore takes back everything appended since save: fields, rows, and
// the predictions paired with request rows.
func (s *sink) restore(m sinkMark) {
	if s.pred {
		for i := m.n; i < s.n && i < s.reqRows; i++ {
			s.rows[s.base+i].Predictions = nil
		}
	}
	clear(s.rows[m.rows:])
	s.rows = s.rows[:m.rows]
	s.fields = s.fields[:m.fields]
	s.start, s.n = m.start, m.n
}

// endRow closes the row made of fields[start:]. A response row beyond the
// request's rows is dropped when the request was present.
func (s *sink) endRow() {
	fs := s.fields[s.start:len(s.fields):len(s.fields)]
	switch {
	case !s.pred:
		s.rows = append(s.rows, Row{Features: fs})
	case s.n < s.reqRows:
		s.rows[s.base+s.n].Predictions = fs
	case !s.hasReq:
		s.rows = append(s.rows, Row{Predictions: fs})
	default:
		s.fields = s.fields[:s.start]
	}
	s.n++
	s.start = len(s.fields)
}

// commit re-slices the current side's rows from the final fields and
// switches to the response side.
func (s *sink) commit() {
	off := 0
	for i := s.base; i < len(s.rows); i++ {
		p := &s.rows[i].Features
		if s.pred {
			p = &s.rows[i].Predictions
		}
		n := len(*p)
		if n == 0 {
			*p = nil
			continue
		}
		*p = s.fields[off : off+n : off+n]
		off += n
	}
	side := 0
	if s.pred {
		side = 1
	}
	s.arena[side] = s.fields[:0] // grown or not, kept for the next call
	if !s.pred {
		s.reqRows = s.n
	}
	s.pred, s.fields, s.start, s.n = true, s.arena[1][:0], 0, 0
}

// finish commits the current side and drops the rows that carry nothing.
func (s *sink) finish() []Row {
	s.commit()
	out := s.rows[:s.base]
	for _, r := range s.rows[s.base:] {
		if len(r.Features) > 0 || len(r.Predictions) > 0 {
			out = append(out, r)
		}
	}
	clear(s.rows[len(out):]) // no stale references past the end
	return out
}

// fail clears the rows this exchange wrote past the end of dst, which it
// returns.
func (s *sink) fail(dst []Row) []Row {
	clear(s.rows[s.base:])
	return dst
}
