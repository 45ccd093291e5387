package monitor

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

func TestShouldSample(t *testing.T) {
	t.Run("edges", func(t *testing.T) {
		id := []byte("abc")
		assert.False(t, ShouldSample(0, id))
		assert.False(t, ShouldSample(-1, id))
		assert.False(t, ShouldSample(math.NaN(), id))
		assert.True(t, ShouldSample(1, id))
		assert.True(t, ShouldSample(2, id))
		assert.True(t, ShouldSample(1, nil))
	})
	t.Run("deterministic", func(t *testing.T) {
		for i := range 1000 {
			id := []byte("req-" + strconv.Itoa(i))
			assert.Equal(t, ShouldSample(0.3, id), ShouldSample(0.3, append([]byte(nil), id...)))
		}
	})
	t.Run("monotone in rate", func(t *testing.T) {
		// An id sampled at a rate is sampled at every higher rate.
		for i := range 1000 {
			id := []byte(strconv.Itoa(i))
			if ShouldSample(0.2, id) {
				assert.True(t, ShouldSample(0.5, id))
			}
		}
	})
	for _, rate := range []float64{0.01, 0.1, 0.5, 0.9} {
		t.Run("rate "+strconv.FormatFloat(rate, 'g', -1, 64), func(t *testing.T) {
			const n = 100_000
			hits := 0
			buf := make([]byte, 0, 32)
			for i := range n {
				// Sequential ids, the worst case for a weak hash.
				buf = strconv.AppendInt(append(buf[:0], "0af1c3d2-"...), int64(i), 10)
				if ShouldSample(rate, buf) {
					hits++
				}
			}
			assert.InDelta(t, rate, float64(hits)/n, 0.01)
		})
	}
	t.Run("no allocations", func(t *testing.T) {
		id := []byte("5f0c2a7e-1b9d-4e7a-9c1d-3f2b8a6d4e10")
		assert.Zero(t, testing.AllocsPerRun(100, func() { ShouldSample(0.5, id) }))
	})
}

func TestOfferNeverBlocks(t *testing.T) {
	f := newFixture(t, Options{})
	cfg := config(model("iris", configs.Monitor{Window: 10}, "v1"))
	cfg.Sampling.QueueSize = 4
	require.NoError(t, f.m.Configure(cfg))

	start := time.Now()
	taken := 0
	for range 10 {
		s := f.m.AcquireSample()
		s.Model, s.Version = "iris", "v1"
		s.AppendReq([]byte(`{"instances":[[1]]}`))
		if f.m.Offer(s) {
			taken++
		}
	}
	assert.Less(t, time.Since(start), time.Second)
	assert.Equal(t, 4, taken)
	dropped, ok := f.value(t, "vane_monitor_samples_dropped_total", map[string]string{"model": "iris", "reason": "queue_full"})
	require.True(t, ok)
	assert.Equal(t, 6.0, dropped)
	length, _ := f.value(t, "vane_monitor_queue_length", nil)
	assert.Equal(t, 4.0, length)
	capacity, _ := f.value(t, "vane_monitor_queue_capacity", nil)
	assert.Equal(t, 4.0, capacity)

	f.m.Drop("iris", ReasonBodyTooLarge)
	f.m.Drop("iris", "something_else")
	got, _ := f.value(t, "vane_monitor_samples_dropped_total", map[string]string{"model": "iris", "reason": "body_too_large"})
	assert.Equal(t, 1.0, got)
	got, _ = f.value(t, "vane_monitor_samples_dropped_total", map[string]string{"model": "iris", "reason": "something_else"})
	assert.Equal(t, 1.0, got)

	// A later queue size needs a restart: the queue keeps its size.
	cfg.Sampling.QueueSize = 8
	require.NoError(t, f.m.Configure(cfg))
	capacity, _ = f.value(t, "vane_monitor_queue_capacity", nil)
	assert.Equal(t, 4.0, capacity)
	assert.Contains(t, f.logText(), "take effect on restart")
}

func TestOfferByteBudget(t *testing.T) {
	f := newFixture(t, Options{})
	require.NoError(t, f.m.Configure(config(model("iris", configs.Monitor{Window: 10}, "v1"))))
	big := make([]byte, MaxQueueBytes/4)
	offer := func() bool {
		s := f.m.AcquireSample()
		s.Model, s.Version = "iris", "v1"
		s.req = big // shared, not copied: only the length counts here
		return f.m.Offer(s)
	}
	for i := range 4 {
		require.True(t, offer(), "sample %d fits the budget", i)
	}
	assert.False(t, offer(), "over MaxQueueBytes")
	dropped, _ := f.value(t, "vane_monitor_samples_dropped_total", map[string]string{"model": "iris", "reason": "queue_full"})
	assert.Equal(t, 1.0, dropped)

	q := f.m.queue.Load()
	s := <-q.ch
	q.dequeued(s)
	s.req = nil
	f.m.Release(s)
	assert.True(t, offer(), "room again once a worker takes one")
	for len(q.ch) > 0 {
		s := <-q.ch
		q.dequeued(s)
		s.req = nil
	}
	assert.Zero(t, q.bytes.Load())
}

func TestOfferBeforeConfigure(t *testing.T) {
	f := newFixture(t, Options{})
	s := f.m.AcquireSample()
	s.Model = "iris"
	assert.False(t, f.m.Offer(s))
	got, ok := f.value(t, "vane_monitor_samples_dropped_total", map[string]string{"model": "iris", "reason": "not_configured"})
	require.True(t, ok)
	assert.Equal(t, 1.0, got)
}

func TestSampleReuse(t *testing.T) {
	f := newFixture(t, Options{})
	s := f.m.AcquireSample()
	assert.Equal(t, -1, s.Input.InferenceHeaderLen)
	assert.Equal(t, -1, s.Input.RespInferenceHeaderLen)
	s.Model, s.RequestID = "m", "id"
	s.AppendReq([]byte("ab"))
	s.AppendReq([]byte("cd"))
	s.AppendResp([]byte("xyz"))
	assert.Equal(t, "abcd", string(s.Input.ReqBody))
	assert.Equal(t, "xyz", string(s.Input.RespBody))
	s.reset()
	assert.Empty(t, s.Model)
	assert.Empty(t, s.Input.ReqBody)
	assert.Equal(t, 0, len(s.req))
	assert.Equal(t, -1, s.Input.InferenceHeaderLen)

	big := &Sample{req: make([]byte, 0, maxPooledBody+1)}
	big.reset()
	assert.Nil(t, big.req, "huge buffers are not pooled")
	f.m.Release(nil) // no-op
}

// BenchmarkOffer is the proxy's cost per sampled exchange: acquire a
// pooled sample, copy both bodies, queue it. A consumer drains the queue
// as the workers would.
func BenchmarkOffer(b *testing.B) {
	f := newFixture(b, Options{})
	cfg := config(model("iris", configs.Monitor{Window: 1000}, "v1"))
	cfg.Sampling.QueueSize = 1024
	if err := f.m.Configure(cfg); err != nil {
		b.Fatal(err)
	}
	q := f.m.queue.Load()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case s := <-q.ch:
				q.dequeued(s)
				f.m.Release(s)
			case <-done:
				return
			}
		}
	}()
	req := []byte(`{"instances":[[6.8,2.8,4.8,1.4]]}`)
	resp := []byte(`{"predictions":[1]}`)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s := f.m.AcquireSample()
		s.Model, s.Version = "iris", "v1"
		s.Input.Status = 200
		s.AppendReq(req)
		s.AppendResp(resp)
		f.m.Offer(s)
	}
	b.StopTimer()
	close(done)
	<-stopped
}

func TestSetMetaCopiesAndAllocatesNothing(t *testing.T) {
	m := newFixture(t, Options{}).m
	s := m.AcquireSample()
	id, path := []byte("req-1"), []byte("/v1/models/iris:predict")
	s.SetMeta(id, path, []byte("application/json"), nil)
	id[0], path[1] = 'X', 'X' // the caller's buffers are reused by fasthttp
	assert.Equal(t, "req-1", s.RequestID)
	assert.Equal(t, "/v1/models/iris:predict", s.Input.Path)
	assert.Equal(t, "application/json", s.Input.ReqContentType)
	assert.Equal(t, "", s.Input.RespContentType)
	allocs := testing.AllocsPerRun(100, func() {
		s.SetMeta([]byte("req-2"), []byte("/p"), []byte("text/csv"), []byte("application/json"))
	})
	assert.Zero(t, allocs)
	m.Release(s)
}
