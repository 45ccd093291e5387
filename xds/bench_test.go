package xds

import (
	"testing"

	"github.com/vaneproxy/vane/configs"
)

// BenchmarkSidecarUpdate is what a sidecar does with one update of a
// four-model group: Envoy resources back to models, composed and parsed
// as a file.
func BenchmarkSidecarUpdate(b *testing.B) {
	cfg, err := configs.Parse([]byte(roundTripFile))
	if err != nil {
		b.Fatal(err)
	}
	models := append(append([]configs.Model{}, cfg.Models...), cfg.Models...)
	models[2].Name, models[3].Name = "iris2", "chat2"
	models[2].Match.PathPrefix = "/other"
	models[3].Match.Host = "chat2.internal"
	res, err := ToEnvoy(models)
	if err != nil {
		b.Fatal(err)
	}
	comp, err := newComposer([]byte(sidecarBase))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ms, err := FromEnvoy(res)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := comp.compose(ms); err != nil {
			b.Fatal(err)
		}
	}
}
