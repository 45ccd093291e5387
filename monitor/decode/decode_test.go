package decode

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// exchange is an Input with JSON-only bodies and a 200 answer.
func exchange(req, resp string) Input {
	return Input{
		ReqBody: []byte(req), RespBody: []byte(resp), Status: 200,
		InferenceHeaderLen: -1, RespInferenceHeaderLen: -1,
	}
}

// n and c build numeric and categorical fields.
func n(name string, v float64) Field { return Field{Name: name, Value: Value{Num: v}} }
func c(name, v string) Field         { return Field{Name: name, Value: Value{Cat: v, IsCat: true}} }

// fs is a list of fields, nil when empty, as Decode returns them.
func fs(f ...Field) []Field {
	if len(f) == 0 {
		return nil
	}
	return f
}

// decodeOK decodes in and requires success.
func decodeOK(t *testing.T, spec *Spec, in Input) []Row {
	t.Helper()
	rows, err := Decode(nil, spec, &in)
	require.NoError(t, err)
	checkRows(t, rows)
	return rows
}

// decodeBad decodes in and requires ErrMalformed, with an error text that
// quotes nothing of the bodies.
func decodeBad(t *testing.T, spec *Spec, in Input) error {
	t.Helper()
	dst := []Row{{Features: fs(n("keep", 1))}}
	rows, err := Decode(dst, spec, &in)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrMalformed)
	assert.Equal(t, dst, rows, "dst unchanged on error")
	assertNoEcho(t, err, in.ReqBody, in.RespBody)
	return err
}

// checkRows asserts the invariants of every result: no NaN or infinity,
// no row without fields.
func checkRows(t testing.TB, rows []Row) {
	t.Helper()
	for i, r := range rows {
		if len(r.Features) == 0 && len(r.Predictions) == 0 {
			t.Errorf("row %d is empty", i)
		}
		for _, f := range append(r.Features[:len(r.Features):len(r.Features)], r.Predictions...) {
			if !f.Value.IsCat && (math.IsNaN(f.Value.Num) || math.IsInf(f.Value.Num, 0)) {
				t.Errorf("row %d: %s is %v", i, f.Name, f.Value.Num)
			}
			if f.Value.IsCat == false && f.Value.Cat != "" {
				t.Errorf("row %d: %s is numeric with a category", i, f.Name)
			}
		}
	}
}

// assertNoEcho fails when the error text holds a run of 12 bytes of a body
// that is not text the decoder itself writes.
func assertNoEcho(t testing.TB, err error, bodies ...[]byte) {
	t.Helper()
	msg := err.Error()
	assert.Less(t, len(msg), 200, "error text too long: %s", msg)
	for _, b := range bodies {
		for i := 0; i+12 <= len(b); i++ {
			if w := string(b[i : i+12]); strings.Contains(msg, w) && !strings.Contains(ownText, w) {
				t.Errorf("error %q quotes the payload (%q)", msg, w)
				return
			}
		}
	}
}

// ownText is what error texts may contain besides numbers.
const ownText = "binary_data_size Inference-Header-Content-Length dataframe_split dataframe_records instances predictions outputs"

func TestDecodeDispatch(t *testing.T) {
	in := exchange(`{"instances": [[1, 2]]}`, `{"predictions": [0]}`)

	t.Run("grpc yields nothing", func(t *testing.T) {
		rows, err := Decode(nil, &Spec{Protocol: configs.ProtocolGRPC}, &in)
		require.NoError(t, err)
		assert.Empty(t, rows)
	})
	t.Run("unknown protocol is not a payload error", func(t *testing.T) {
		_, err := Decode(nil, &Spec{Protocol: "carrier-pigeon"}, &in)
		require.Error(t, err)
		assert.False(t, errors.Is(err, ErrMalformed))
	})
	t.Run("empty protocol is raw", func(t *testing.T) {
		rows := decodeOK(t, &Spec{Paths: map[string]string{"a": "instances.0.1"}}, in)
		assert.Equal(t, []Row{{Features: fs(n("a", 2))}}, rows)
	})
	t.Run("appends to dst", func(t *testing.T) {
		dst := make([]Row, 1, 8)
		dst[0] = Row{Features: fs(n("x", 9))}
		rows, err := Decode(dst, &Spec{Protocol: configs.ProtocolKServeV1}, &in)
		require.NoError(t, err)
		require.Len(t, rows, 2)
		assert.Equal(t, dst[0], rows[0])
		assert.Equal(t, Row{Features: fs(n("f0", 1), n("f1", 2)), Predictions: fs(n("prediction", 0))}, rows[1])
	})
	t.Run("error names protocol and side", func(t *testing.T) {
		err := decodeBad(t, &Spec{Protocol: configs.ProtocolKServeV1}, exchange(`{"instances": [[1]]}`, `{"oops": 1}`))
		assert.Equal(t, "kserve-v1: response: no predictions, outputs or results: malformed payload", err.Error())
	})
}

// TestRowsOwnTheirMemory checks that no value aliases the bodies, which the
// monitor recycles as soon as Decode returns.
func TestRowsOwnTheirMemory(t *testing.T) {
	in := exchange(`{"instances": [{"color": "red", "size": 3}]}`, `{"predictions": ["big"]}`)
	rows := decodeOK(t, &Spec{Protocol: configs.ProtocolKServeV1}, in)
	for i := range in.ReqBody {
		in.ReqBody[i] = 'x'
	}
	for i := range in.RespBody {
		in.RespBody[i] = 'x'
	}
	assert.Equal(t, []Row{{Features: fs(c("color", "red"), n("size", 3)), Predictions: fs(c("prediction", "big"))}}, rows)
}

func TestStatusAndAbsentBodies(t *testing.T) {
	spec := &Spec{Protocol: configs.ProtocolKServeV1}
	req, resp := `{"instances": [[1], [2]]}`, `{"predictions": [7, 8]}`
	both := []Row{
		{Features: fs(n("f0", 1)), Predictions: fs(n("prediction", 7))},
		{Features: fs(n("f0", 2)), Predictions: fs(n("prediction", 8))},
	}
	featuresOnly := []Row{{Features: fs(n("f0", 1))}, {Features: fs(n("f0", 2))}}
	tests := []struct {
		name   string
		in     Input
		status int
		want   []Row
	}{
		{"2xx", exchange(req, resp), 200, both},
		{"201", exchange(req, resp), 201, both},
		{"error answer is not decoded", exchange(req, `{"error": "boom"}`), 500, featuresOnly},
		{"4xx with a prediction-like body", exchange(req, resp), 400, featuresOnly},
		{"no status", exchange(req, resp), 0, featuresOnly},
		{"response not sampled", exchange(req, ""), 200, featuresOnly},
		{"request not sampled", exchange("", resp), 200, []Row{
			{Predictions: fs(n("prediction", 7))}, {Predictions: fs(n("prediction", 8))}}},
		{"nothing sampled", exchange("", ""), 200, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Status = tc.status
			assert.Equal(t, tc.want, decodeOK(t, spec, tc.in))
		})
	}
}

// TestDecodeConcurrent decodes with one shared spec from many goroutines,
// as the monitor's workers do; run with -race.
func TestDecodeConcurrent(t *testing.T) {
	spec := &Spec{Protocol: configs.ProtocolKServeV2, Features: iris}
	in := exchange(v2IrisReq, v2IrisResp)
	want := decodeOK(t, spec, in)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var rows []Row
			for range 50 {
				var err error
				rows, err = Decode(rows[:0], spec, &in)
				if !assert.NoError(t, err) || !assert.Equal(t, want, rows) {
					return
				}
			}
		})
	}
	wg.Wait()
}
