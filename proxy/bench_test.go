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
// client, vane with two weighted versions, two fasthttp backends. Run with
// -cpu 1 for "one core"; allocs/op include the client's and backends'.
func BenchmarkProxy(b *testing.B) {
	v := startVaneB(b, twoVersions(fastBackend(b), fastBackend(b), 80, 20, "    routing:\n      sticky_header: x-user-id\n"))
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
