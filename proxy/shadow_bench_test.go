package proxy

import (
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// BenchmarkShadow measures what a shadow costs the clients: the same
// primary and traffic as BenchmarkProxy (one version), with shadow_rate 0
// (off), a healthy shadow, a shadow that never answers (each copy waits
// out shadow_timeout 100ms, the queue fills and drops), and a shadow that
// is down (no routable endpoint). It reports the clients' p50 and p99
// latency; run with -count and compare the cases side by side.
func BenchmarkShadow(b *testing.B) {
	for _, tc := range []struct{ name, rate string }{{"off", "0"}, {"healthy", "1"}, {"hangs", "1"}, {"down", "1"}} {
		b.Run(tc.name, func(b *testing.B) {
			shadow := fastBackend(b)
			switch tc.name {
			case "hangs":
				shadow = hangingBackend(b)
			case "down":
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(b, err)
				shadow = "http://" + ln.Addr().String()
				_ = ln.Close()
			}
			cfg := shadowConfig(fastBackend(b), shadow, "", "      shadow_rate: "+tc.rate+"\n      shadow_timeout: 100ms")
			v := startVaneUnready(b, cfg)
			waitReady(b, v.admin)
			if tc.name != "down" {
				deadline := time.Now().Add(5 * time.Second)
				for !v.srv.snap.Load().table.Models()[0].Versions[1].Routable() && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			}
			benchLatency(b, v)
		})
	}
}

// hangingBackend passes health checks and never answers a predict until
// the benchmark ends.
func hangingBackend(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	done := make(chan struct{})
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if !ctx.IsPost() {
			ctx.SetBodyString(`{"ready":true}`)
			return
		}
		<-done
	}}
	go func() { _ = s.Serve(ln) }()
	b.Cleanup(func() { close(done); _ = s.Shutdown() })
	return "http://" + ln.Addr().String()
}

// benchLatency sends kserve-v1 predicts from parallel clients and reports
// their latency quantiles.
func benchLatency(b *testing.B, v *vane) {
	c := &fasthttp.HostClient{Addr: v.addr, MaxConns: 64}
	body := []byte(`{"instances":[[6.8,2.8,4.8,1.4]]}`)
	uri := "http://" + v.addr + "/v1/models/iris:predict"
	var mu sync.Mutex // guards all
	var all []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		var lat []time.Duration
		for pb.Next() {
			req.Reset()
			req.SetRequestURI(uri)
			req.Header.SetMethod(fasthttp.MethodPost)
			req.Header.SetContentType("application/json")
			req.SetBodyRaw(body)
			start := time.Now()
			if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 ||
				!strings.Contains(string(resp.Body()), "predictions") {
				b.Errorf("request failed: %v %d", err, resp.StatusCode())
				return
			}
			lat = append(lat, time.Since(start))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
