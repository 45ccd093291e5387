package routing

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vaneproxy/vane/configs"
)

// benchTable is a realistic table: a handful of models, three weighted
// versions each, a sticky header, matchers on prefix, host and headers.
func benchTable(tb testing.TB) *Table {
	models := []configs.Model{}
	for _, name := range []string{"iris", "resnet", "bert", "llama", "xgb"} {
		m := sticky(model(name,
			ver("v1", 80, "http://"+name+"-1:8000", "http://"+name+"-2:8000", "http://"+name+"-3:8000"),
			ver("v2", 15, "http://"+name+"-4:8000"),
			ver("v3", 5, "h2c://"+name+"-5:8001")))
		m.Match.PathPrefix = "/v1/models/" + name
		models = append(models, m)
	}
	models[1].Match.Host = "models.internal"
	models[2].Match.Headers = map[string]string{"x-tier": "gold"}
	return build(tb, config(models...), nil)
}

var (
	benchHost    = []byte("models.internal:8080")
	benchPath    = []byte("/v1/models/xgb:predict") // last in priority order among equals
	benchHeaders = hdrs{"x-tier": []byte("silver")}
	benchUser    = []byte("0b6f2c1e-3d4a-4f5b-9c8d-7e6f5a4b3c2d")
)

func TestHotPathAllocatesNothing(t *testing.T) {
	tbl := benchTable(t)
	m := tbl.Models()[4]
	v := m.Versions[0]
	override := []byte("v2")
	tests := map[string]func(){
		"Match":          func() { tbl.Match(benchHost, benchPath, benchHeaders) },
		"Match no model": func() { tbl.Match(benchHost, []byte("/nope"), benchHeaders) },
		"Pick weighted":  func() { _, _ = m.Pick(nil, nil) },
		"Pick sticky":    func() { _, _ = m.Pick(nil, benchUser) },
		"Pick override":  func() { _, _ = m.Pick(override, benchUser) },
		"Pick unknown":   func() { _, _ = m.Pick([]byte("v9"), nil) },
		"Version":        func() { m.Version(override) },
		"PickEndpoint":   func() { v.PickEndpoint(rand.Uint64()) },
		"Begin End":      func() { e := v.Endpoints[0]; e.Begin(); e.End() },
		"Routable":       func() { v.Routable() },
	}
	for name, f := range tests {
		assert.Zero(t, testing.AllocsPerRun(1000, f), name)
	}
	assert.Equal(t, "xgb", tbl.Match(benchHost, benchPath, benchHeaders).Name)
}

func BenchmarkMatch(b *testing.B) {
	tbl := benchTable(b)
	b.ReportAllocs()
	for b.Loop() {
		tbl.Match(benchHost, benchPath, benchHeaders)
	}
}

func BenchmarkPick(b *testing.B) {
	m := benchTable(b).Models()[0]
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.Pick(nil, nil)
	}
}

// BenchmarkPickParallel shows the cost of sharing the cycle counter.
func BenchmarkPickParallel(b *testing.B) {
	m := benchTable(b).Models()[0]
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = m.Pick(nil, nil)
		}
	})
}

func BenchmarkPickSticky(b *testing.B) {
	m := benchTable(b).Models()[0]
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.Pick(nil, benchUser)
	}
}

func BenchmarkPickEndpoint(b *testing.B) {
	v := benchTable(b).Models()[0].Versions[0]
	rnd := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		v.PickEndpoint(rnd.Uint64())
	}
}

func BenchmarkSetRoutable(b *testing.B) {
	tbl := benchTable(b)
	e := tbl.Models()[0].Versions[0].Endpoints[0]
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tbl.SetRoutable(e, i%2 == 0)
	}
}
