package monitor

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/monitor/decode"
)

// BenchmarkWindowClose64 is the cost of closing one window of a 64-feature
// version with the defaults (windows of 1000 rows, a 10,000-row warmup
// reference, the cusum detector): each iteration fills the window
// (untimed) and times the row that closes it. under_lock times apply
// alone — the part under the version's lock, which the data of other
// samples waits for: the buffers swap — and total adds finish, which
// computes every method per feature, the correction and the cusum
// outside the lock, then publishes under it.
func BenchmarkWindowClose64(b *testing.B) {
	b.Run("under_lock", func(b *testing.B) { benchClose(b, "swap") })
	b.Run("publish_under_lock", func(b *testing.B) { benchClose(b, "publish") })
	b.Run("total", func(b *testing.B) { benchClose(b, "total") })
}

func benchClose(b *testing.B, part string) {
	names := make([]string, 64)
	for i := range names {
		names[i] = "f" + strconv.Itoa(i)
	}
	m, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	mon := configs.Monitor{Features: names, MaxAge: 0}
	if err := m.Configure(config(model("m", mon, "v1"))); err != nil {
		b.Fatal(err)
	}
	v := m.snap.Load().models["m"].versions["v1"]
	rng := rand.New(rand.NewPCG(1, 1))
	batch := make([]decode.Row, 100)
	fill := func(rows int) {
		defer v.finish(nil, nil)
		for rows > 0 {
			n := min(rows, len(batch))
			for i := range batch[:n] {
				fs := batch[i].Features[:0]
				for _, name := range names {
					fs = append(fs, decode.Field{Name: name, Value: decode.Value{Num: rng.NormFloat64()}})
				}
				batch[i].Features = fs
			}
			v.apply(batch[:n], time.Time{}, nil)
			rows -= n
		}
	}
	fill(v.set.warmup)
	if v.ref == nil {
		b.Fatal("no reference")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		fill(v.set.window - 1)
		batch[0].Features = batch[0].Features[:0]
		for _, name := range names {
			batch[0].Features = append(batch[0].Features, decode.Field{Name: name, Value: decode.Value{Num: rng.NormFloat64()}})
		}
		switch part {
		case "swap":
			b.StartTimer()
			v.apply(batch[:1], time.Time{}, nil) // the row that closes the window
			b.StopTimer()
			v.finish(nil, nil)
		case "publish":
			v.apply(batch[:1], time.Time{}, nil)
			cw := v.pending[0]
			v.pending = nil
			cal := v.compute(cw)
			b.StartTimer()
			v.mu.Lock()
			v.publish(cw, cal, nil)
			v.mu.Unlock()
			b.StopTimer()
		default:
			b.StartTimer()
			v.ingest(batch[:1], time.Time{}, nil)
			b.StopTimer()
		}
		b.StartTimer()
	}
}
