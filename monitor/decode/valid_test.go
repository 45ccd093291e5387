package decode

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validCases are inputs where a scanner is easily wrong, with what
// json.Valid says of them written out, so that a change of encoding/json
// shows up too.
var validCases = []struct {
	in   string
	want bool
}{
	{"", false},
	{" \t\r\n", false},
	{"  true  ", true},
	{"\t\n\r 1\r\n", true},
	{"\f1", false}, // form feed and vertical tab are not JSON whitespace
	{"\v1", false},
	{"\ufeff{}", false}, // nor is a byte order mark
	{"\x00", false},

	{"true", true}, {"false", true}, {"null", true},
	{"tru", false}, {"nul", false}, {"fals", false},
	{"True", false}, {"nulll", false}, {"truex", false}, {"NaN", false}, {"Infinity", false},

	{"0", true}, {"-0", true}, {"01", false}, {"-01", false}, {"00", false},
	{"-", false}, {"+1", false}, {".5", false}, {"-.5", false},
	{"1.", false}, {"1.e5", false}, {"1.5", true}, {"1.5.3", false},
	{"1e", false}, {"1e+", false}, {"1e-", false}, {"1e5", true}, {"1E+5", true}, {"1e-0", true},
	{"0.0e00", true}, {"-12.34E-056", true}, {"1x", false}, {"[-]", false}, {"[1e]", false},

	{`""`, true},
	{`"abc`, false},
	{`"\"`, false},
	{`"\"\\\/\b\f\n\r\t"`, true},
	{`"\u00e9\uD800\uFFFF"`, true}, // lone surrogates are not checked
	{`"\u12"`, false},
	{`"\u12G4"`, false},
	{`"\u`, false},
	{`"\x"`, false},
	{`"\'"`, false},
	{"\"a\x01b\"", false},
	{"\"0123456789\x1f0123456789\"", false}, // long strings are scanned by the word
	{`"0123456789\"0123456789\\0123456789"`, true},
	{`"0123456789"0123456789"`, false},
	{"\"a\tb\"", false},
	{"\"a\x7fb\"", true},       // DEL is no control character to JSON
	{"\"\xff\xfe\"", true},     // nor is UTF-8 checked,
	{"\"\xc3\"", true},         // even a truncated sequence,
	{"\"\xed\xa0\x80\"", true}, // or an encoded surrogate
	{"\xff", false},            // but outside strings, invalid bytes are

	{"{}", true}, {"[]", true}, {"[[[]]]", true}, {" [ ] ", true}, {"{ }", true},
	{"[1,]", false}, {"[,]", false}, {"[,1]", false}, {"[1 2]", false}, {"[1,,2]", false},
	{`{"a":1,}`, false}, {`{"a" 1}`, false}, {`{"a"}`, false}, {`{"a":}`, false}, {"{,}", false},
	{"{1:2}", false}, {"{a:1}", false}, {`{"a":1 "b":2}`, false}, {`{"a"::1}`, false},
	{`{"a":1,"a":2}`, true}, // duplicate names pass
	{"[}", false}, {"{]", false}, {`[{"a":[1]}]`, true}, {`[{"a":[1}]]`, false},
	{"[1]]", false}, {"]", false}, {"}", false}, {"[", false}, {"{", false}, {`{"a":1`, false},

	{"{} x", false}, {"1 2", false}, {"{}{}", false}, {"[] ,", false}, {",1", false},

	{strings.Repeat("[", 10000) + strings.Repeat("]", 10000), true},
	{strings.Repeat("[", 10001) + strings.Repeat("]", 10001), false},
	{strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000), true},
	{strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001), false},
	{strings.Repeat("[", 10001), false},
	{nested(200, -1), true},
	{nested(200, 3), false},   // a mismatch among the levels spilled past 64,
	{nested(200, 398), false}, // and among the innermost ones
}

// nested alternates 2n levels of lists and objects, with the closer of
// level bad (0 is the outermost) swapped for the wrong one, or none if bad
// is out of range.
func nested(n, bad int) string {
	var opens, closes strings.Builder
	for i := range 2 * n {
		if i%2 == 0 {
			opens.WriteString("[")
		} else {
			opens.WriteString(`{"k":`)
		}
	}
	for i := 2*n - 1; i >= 0; i-- {
		if (i%2 == 0) != (i == bad) {
			closes.WriteString("]")
		} else {
			closes.WriteString("}")
		}
	}
	return opens.String() + "0" + closes.String()
}

func TestJSONValid(t *testing.T) {
	for _, tc := range validCases {
		name := tc.in
		if len(name) > 40 {
			name = fmt.Sprintf("%.20s…(%d bytes)", name, len(name))
		}
		assert.Equal(t, tc.want, json.Valid([]byte(tc.in)), "json.Valid(%q)", name)
		assert.Equal(t, tc.want, jsonValid([]byte(tc.in)), "jsonValid(%q)", name)
	}
}

// A truncated body is never valid, wherever it is cut.
func TestJSONValidPrefixes(t *testing.T) {
	for _, body := range validBenchBodies(t) {
		require.True(t, jsonValid(body.b), body.name)
		for i := range body.b {
			p := body.b[:i]
			require.False(t, json.Valid(p), "%q", p)
			require.False(t, jsonValid(p), "%q", p)
		}
	}
}

func TestJSONValidAllocs(t *testing.T) {
	body := []byte(nested(32, -1))
	require.True(t, jsonValid(body))
	assert.Zero(t, testing.AllocsPerRun(100, func() { jsonValid(body) }))
}

func FuzzValidJSON(f *testing.F) {
	for _, tc := range validCases {
		// The 10000 levels are left to the table: each mutation of them
		// would cost as much as a hundred small ones.
		if len(tc.in) < 4096 {
			f.Add([]byte(tc.in))
		}
	}
	f.Add([]byte(nested(40, -1)))
	f.Add([]byte(nested(40, 5)))
	for _, body := range validBenchBodies(f) {
		f.Add(body.b)
	}
	f.Add([]byte(`{"predictions": [1, 1], "model_version": "v2"}`))
	f.Add([]byte(`{"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x\u00e9"], [2, null]]}}`))
	f.Add([]byte(`{"choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := jsonValid(b), json.Valid(b); got != want {
			t.Fatalf("jsonValid(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

type validBenchBody struct {
	name string
	b    []byte
}

// validBenchBodies are a one-row KServe v1 request and a ~2 KB KServe v2
// response with strings, escapes, nesting and numbers of every form.
func validBenchBodies(tb testing.TB) []validBenchBody {
	small := []byte(`{"instances":[[6.8,2.8,4.8,1.4]]}`)
	type output struct {
		Name       string         `json:"name"`
		Shape      []int          `json:"shape"`
		Datatype   string         `json:"datatype"`
		Parameters map[string]any `json:"parameters,omitempty"`
		Data       any            `json:"data"`
	}
	probs := make([][3]float64, 16)
	labels := make([]string, 16)
	for i := range probs {
		f := float64(i%7) / 7
		probs[i] = [3]float64{0.091 * f, 1 - 0.364*f, -2.5e-7 * f}
		labels[i] = fmt.Sprintf("class \"%d\"\tsetosa/versicolor", i%3)
	}
	large, err := json.MarshalIndent(map[string]any{
		"model_name":    "iris-classifier",
		"model_version": "2024-06-01",
		"id":            "8f14e45f-ceea-467f-a0e1-a8b2c9d3e4f5",
		"parameters":    map[string]any{"sequence_id": 0, "binary_data": false, "note": "naïve – ünïcödé <&>"},
		"outputs": []output{
			{Name: "probabilities", Shape: []int{16, 3}, Datatype: "FP64", Data: probs},
			{Name: "label", Shape: []int{16}, Datatype: "BYTES", Parameters: map[string]any{"content_type": "str"}, Data: labels},
		},
	}, "", " ")
	require.NoError(tb, err)
	return []validBenchBody{
		{fmt.Sprintf("kserve-v1/%dB", len(small)), small},
		{fmt.Sprintf("kserve-v2/%dB", len(large)), large},
	}
}

func BenchmarkValidJSON(b *testing.B) {
	for _, body := range validBenchBodies(b) {
		for _, v := range []struct {
			name  string
			valid func([]byte) bool
		}{{"jsonValid", jsonValid}, {"json.Valid", json.Valid}} {
			b.Run(body.name+"/"+v.name, func(b *testing.B) {
				require.True(b, v.valid(body.b))
				b.SetBytes(int64(len(body.b)))
				b.ReportAllocs()
				for b.Loop() {
					v.valid(body.b)
				}
			})
		}
	}
}
