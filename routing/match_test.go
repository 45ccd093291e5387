package routing

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vaneproxy/vane/configs"
)

func matchModels() []configs.Model {
	withMatch := func(name string, mt configs.Match) configs.Model {
		m := model(name, ver("v1", 1))
		m.Match = mt
		return m
	}
	return []configs.Model{
		withMatch("iris", configs.Match{PathPrefix: "/v1/models/iris"}),
		withMatch("iris-v2", configs.Match{PathPrefix: "/v1/models/iris/v2"}),
		withMatch("iris-host", configs.Match{PathPrefix: "/v1/models/iris", Host: "Iris.Internal"}),
		withMatch("iris-gold", configs.Match{PathPrefix: "/v1/models/iris", Host: "iris.internal",
			Headers: map[string]string{"x-tier": "gold"}}),
		withMatch("api-a", configs.Match{PathPrefix: "/api", Headers: map[string]string{"x-a": "1"}}),
		withMatch("api-ab", configs.Match{PathPrefix: "/api", Headers: map[string]string{"x-a": "1", "x-b": "2"}}),
		withMatch("v6", configs.Match{PathPrefix: "/six", Host: "[::1]"}),
		withMatch("hostonly", configs.Match{Host: "llm.internal"}),
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name       string
		host, path string
		h          Headers
		want       string // "" = no model
	}{
		{"prefix", "example.com", "/v1/models/iris:predict", hdrs{}, "iris"},
		{"longer prefix beats host and headers", "iris.internal", "/v1/models/iris/v2/infer", hdrs{"x-tier": []byte("gold")}, "iris-v2"},
		{"host beats no host", "iris.internal", "/v1/models/iris:predict", hdrs{}, "iris-host"},
		{"host is case-insensitive", "IRIS.INTERNAL", "/v1/models/iris:predict", hdrs{}, "iris-host"},
		{"host port ignored", "iris.internal:8080", "/v1/models/iris:predict", hdrs{}, "iris-host"},
		{"more headers win", "iris.internal:80", "/v1/models/iris", hdrs{"x-tier": []byte("gold")}, "iris-gold"},
		{"header value must be exact", "iris.internal", "/v1/models/iris", hdrs{"x-tier": []byte("golden")}, "iris-host"},
		{"two headers beat one", "x", "/api/run", hdrs{"x-a": []byte("1"), "x-b": []byte("2")}, "api-ab"},
		{"one header held", "x", "/api/run", hdrs{"x-a": []byte("1"), "x-b": []byte("3")}, "api-a"},
		{"header missing", "x", "/api/run", hdrs{"x-b": []byte("2")}, ""},
		{"nil headers", "x", "/api/run", nil, ""},
		{"ipv6 host with port", "[::1]:9000", "/six/predict", nil, "v6"},
		{"ipv6 host without port", "[::1]", "/six", nil, "v6"},
		{"empty prefix matches any path on its host", "llm.internal", "/anything", nil, "hostonly"},
		{"host of the same length differs", "iris.externa1", "/v1/models/iris", nil, "iris"},
		{"host prefix is not the host", "iris.internal.evil", "/v1/models/iris", nil, "iris"},
		{"path shorter than prefix", "iris.internal", "/v1/models/ir", nil, ""},
		{"no match", "example.com", "/other", nil, ""},
	}
	models := matchModels()
	reversed := slices.Clone(models)
	slices.Reverse(reversed)
	for _, order := range []struct {
		name   string
		models []configs.Model
	}{{"config order", models}, {"reversed config order", reversed}} {
		tbl := build(t, config(order.models...), nil)
		for _, tt := range tests {
			t.Run(order.name+"/"+tt.name, func(t *testing.T) {
				got := tbl.Match([]byte(tt.host), []byte(tt.path), tt.h)
				if tt.want == "" {
					assert.Nil(t, got)
					return
				}
				if assert.NotNil(t, got) {
					assert.Equal(t, tt.want, got.Name)
				}
			})
		}
	}
}

func TestMatchCatchAllLosesToAnyPrefix(t *testing.T) {
	all := model("all", ver("v1", 1))
	all.Match = configs.Match{}
	tbl := build(t, config(all, model("iris", ver("v1", 1))), nil)
	assert.Equal(t, "iris", tbl.Match(nil, []byte("/iris/x"), nil).Name)
	assert.Equal(t, "all", tbl.Match(nil, []byte("/other"), nil).Name)
	assert.Equal(t, "all", tbl.Match(nil, nil, nil).Name)
}

func TestMatchTieKeepsConfigOrder(t *testing.T) {
	a, b := model("a", ver("v1", 1)), model("b", ver("v1", 1))
	b.Match = a.Match
	assert.Equal(t, "a", build(t, config(a, b), nil).Match(nil, []byte("/a"), nil).Name)
	assert.Equal(t, "b", build(t, config(b, a), nil).Match(nil, []byte("/a"), nil).Name)
}
