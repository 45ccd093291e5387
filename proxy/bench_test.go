package proxy

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// fastBackend is a fasthttp server answering a small JSON prediction, so
// the benchmark measures vane rather than the backend.
func fastBackend(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"predictions":[1]}`)
	}}
	go func() { _ = s.Serve(ln) }()
	b.Cleanup(func() { _ = s.Shutdown() })
	return "http://" + ln.Addr().String()
}

// BenchmarkProxy is the end-to-end HTTP/1.1 path on loopback: a fasthttp
// client, vane with two weighted versions (health checks, breakers, retry
// budget, sticky routing configured), two fasthttp backends; with drift
// sampling at 1.0 (every exchange copied, queued and decoded in-process)
// and at 0. Run with -cpu 1 for "one core"; allocs/op include the
// client's, the backends' and the monitor worker's.
func BenchmarkProxy(b *testing.B) {
	for _, rate := range []string{"1.0", "0"} {
		b.Run("sample_rate="+rate, func(b *testing.B) {
			cfg := twoVersions(fastBackend(b), fastBackend(b), 80, 20,
				"    routing:\n      sticky_header: x-user-id\n    monitor:\n      sample_rate: "+rate+
					"\n      features: [sepal_length, sepal_width, petal_length, petal_width]\n")
			benchProxy(b, cfg)
		})
	}
}

func benchProxy(b *testing.B, cfg string) {
	v := startVaneUnready(b, cfg)
	waitReady(b, v.admin)
	c := &fasthttp.HostClient{Addr: v.addr, MaxConns: 64}
	body := []byte(`{"instances":[[6.8,2.8,4.8,1.4]]}`)
	uri := "http://" + v.addr + "/v1/models/iris:predict"
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		for pb.Next() {
			req.Reset()
			req.SetRequestURI(uri)
			req.Header.SetMethod(fasthttp.MethodPost)
			req.Header.SetContentType("application/json")
			req.SetBodyRaw(body)
			if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Fatalf("request failed: %v %d", err, resp.StatusCode())
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
