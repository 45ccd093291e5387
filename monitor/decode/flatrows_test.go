package decode

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// decodeBoth decodes one KServe V1 exchange with Decode (fast path first)
// and with the general decoders alone.
func decodeBoth(spec *Spec, in *Input) (fast, general []Row, fastErr, generalErr error) {
	fast, fastErr = Decode(nil, spec, in)
	var d Decoder
	d.start(nil, spec, in)
	general, generalErr = d.sides(nil, spec.Protocol, in, v1RequestAny, v1ResponseAny)
	return fast, general, fastErr, generalErr
}

// sameRows compares rows field by field, numbers bit for bit.
func sameRows(t *testing.T, want, got []Row, msg string) {
	t.Helper()
	require.Len(t, got, len(want), msg)
	for i := range want {
		for _, side := range [][2][]Field{{want[i].Features, got[i].Features}, {want[i].Predictions, got[i].Predictions}} {
			require.Len(t, side[1], len(side[0]), "%s: row %d", msg, i)
			for j := range side[0] {
				w, g := side[0][j], side[1][j]
				require.Equal(t, w.Name, g.Name, "%s: row %d field %d", msg, i, j)
				require.Equal(t, w.Value.IsCat, g.Value.IsCat, "%s: row %d field %d", msg, i, j)
				require.Equal(t, w.Value.Cat, g.Value.Cat, "%s: row %d field %d", msg, i, j)
				require.Equal(t, math.Float64bits(w.Value.Num), math.Float64bits(g.Value.Num), "%s: row %d field %d", msg, i, j)
			}
		}
	}
}

var flatSpec = &Spec{Protocol: configs.ProtocolKServeV1, Features: []string{"a", "b"}}

func TestFlatRowsAgreesWithGeneralPath(t *testing.T) {
	cases := []struct{ req, resp string }{
		{`{"instances":[[6.8,2.8,4.8,1.4]]}`, `{"predictions":[1]}`},
		{` { "instances" : [ [1, 2], [3,4 ] ,[5] ] } `, `{"predictions":[[0.1,0.9],[0.8,0.2],[1,0]]}`},
		{`{"instances":[1,2,3]}`, `{"predictions":[4,5]}`},
		{`{"instances":[]}`, `{"predictions":[]}`},
		{`{"instances":[[]]}`, `{"predictions":[[]]}`},
		{`{"instances":[[1e400,2]]}`, `{"predictions":[-0]}`},
		{`{"instances":[[1,2]]}`, `{"predictions":[1,2,3]}`},
		{`{"instances":[[-0.0,1E5,2e-3]]}`, `{"predictions":[0.12345678901234567890]}`},
		// Not for the fast path: the general path decides.
		{`{"instances":[[1,2]],"x":1}`, `{"predictions":[1],"model_version":"v2"}`},
		{`{"instances":[["a","b"]]}`, `{"predictions":["setosa"]}`},
		{`{"instances":[[[1,2],[3,4]]]}`, `{"predictions":[[[1]]]}`},
		{`{"instances":[{"a":1}]}`, `{"predictions":[{"p":1}]}`},
		{`{"inputs":[[1,2]]}`, `{"outputs":[1]}`},
		{`{"instances":[[01]]}`, `{"predictions":[1.]}`},
		{`{"instances":[[1,2]]`, `{"predictions":[1]} x`},
		{`{"instances":[[1,2,]]}`, `{"predictions":[1,]}`},
		{`{"\u0069nstances":[[1]]}`, `{"predictions":[null]}`},
		{`{"instances":[[1,2]]}{}`, `[1]`},
	}
	for _, c := range cases {
		in := &Input{ReqBody: []byte(c.req), RespBody: []byte(c.resp), Status: 200, InferenceHeaderLen: -1, RespInferenceHeaderLen: -1}
		fast, general, fe, ge := decodeBoth(flatSpec, in)
		msg := c.req + " / " + c.resp
		if ge != nil {
			require.Error(t, fe, msg)
			assert.Equal(t, ge.Error(), fe.Error(), msg)
			continue
		}
		require.NoError(t, fe, msg)
		sameRows(t, general, fast, msg)
	}
	// The fast path did take the first case, and took nothing back.
	var d Decoder
	st, s := d.start(nil, flatSpec, &Input{ReqBody: []byte(cases[0].req)})
	require.True(t, st.flatRows(s, []byte(cases[0].req), `"instances"`))
	require.False(t, st.flatRows(s, []byte(cases[8].req), `"instances"`))
	require.Len(t, s.rows, 1, "a refused body leaves the rows as they were")
	require.Len(t, s.fields, 4)
}

// FuzzFlatRows: whatever the bodies, Decode with the fast path gives what
// the general decoders give.
func FuzzFlatRows(f *testing.F) {
	f.Add([]byte(`{"instances":[[6.8,2.8,4.8,1.4]]}`), []byte(`{"predictions":[1]}`))
	f.Add([]byte(`{"instances":[1,[2,3],[]]}`), []byte(`{"predictions":[[0.5,0.5],2]}`))
	f.Add([]byte(`{"instances":[[1,"x"]]}`), []byte(`{"predictions":[1],"x":2}`))
	f.Add([]byte(` {"instances" :[ [ -1.5e-3 ] ] } `), []byte(`{"predictions":[]}`))
	f.Fuzz(func(t *testing.T, req, resp []byte) {
		in := &Input{ReqBody: req, RespBody: resp, Status: 200, InferenceHeaderLen: -1, RespInferenceHeaderLen: -1}
		fast, general, fe, ge := decodeBoth(flatSpec, in)
		if ge != nil || fe != nil {
			if ge == nil || fe == nil || ge.Error() != fe.Error() {
				t.Fatalf("errors differ: fast %v, general %v", fe, ge)
			}
			return
		}
		sameRows(t, general, fast, "")
	})
}
