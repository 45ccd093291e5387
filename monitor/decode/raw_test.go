package decode

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vaneproxy/vane/configs"
)

func TestRaw(t *testing.T) {
	req := `{"inputs": [{"x": 1.5, "tags": ["a", "b"], "ok": true}], "meta": {"user": {"tier": "gold"}, "0": 7, "n": null}, "list": [[10, 20]]}`
	resp := `{"result": {"score": 0.25, "label": "spam"}, "ids": [3]}`
	tests := []struct {
		name       string
		paths      map[string]string
		prediction string
		req, resp  string
		want       []Row
	}{
		{"paths into objects and lists",
			map[string]string{"x": "inputs.0.x", "tier": "meta.user.tier", "second_tag": "inputs.0.tags.1", "ok": "inputs.0.ok", "zero": "meta.0", "nested": "list.0.1"},
			"result.score", req, resp,
			[]Row{{Features: fs(n("nested", 20), c("ok", "true"), c("second_tag", "b"), c("tier", "gold"), n("x", 1.5), n("zero", 7)),
				Predictions: fs(n("prediction", 0.25))}}},
		{"missing, null and non-scalar paths give nothing",
			map[string]string{"gone": "inputs.3.x", "null": "meta.n", "obj": "meta.user", "list": "inputs.0.tags", "past": "inputs.0.x.y", "neg": "inputs.-1.x", "plus": "list.+0.0", "x": "inputs.0.x"},
			"result.label", req, resp,
			[]Row{{Features: fs(n("x", 1.5)), Predictions: fs(c("prediction", "spam"))}}},
		{"no prediction path",
			map[string]string{"x": "inputs.0.x"}, "", req, `not even JSON`,
			[]Row{{Features: fs(n("x", 1.5))}}},
		{"no paths: the request is not read",
			nil, "ids.0", `not JSON`, resp,
			[]Row{{Predictions: fs(n("prediction", 3))}}},
		{"scalar bodies and the empty path",
			map[string]string{"all": ""}, "", ` 42 `, ``,
			[]Row{{Features: fs(n("all", 42))}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := &Spec{Protocol: configs.ProtocolRaw, Paths: tc.paths, PredictionPath: tc.prediction}
			assert.Equal(t, tc.want, decodeOK(t, spec, exchange(tc.req, tc.resp)))
		})
	}
}

func TestRawMalformed(t *testing.T) {
	spec := &Spec{Protocol: configs.ProtocolRaw, Paths: map[string]string{"x": "a"}, PredictionPath: "p"}
	for name, in := range map[string]Input{
		"truncated request":  exchange(`{"a": "secret-token-123`, `{"p": 1}`),
		"truncated response": exchange(`{"a": 1}`, `{"p": "secret-token-123`),
		"two values":         exchange(`{"a": 1} {"a": 2}`, `{"p": 1}`),
	} {
		t.Run(name, func(t *testing.T) { decodeBad(t, spec, in) })
	}
}
