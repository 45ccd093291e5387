//go:build unix

package h2relay

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
)

// startForwarder is bench/cmd/h2forward in-process: an x/net/http2
// Server whose handler forwards each stream over an http2.Transport.
func startForwarder(b testing.TB, backend string) string {
	var d net.Dialer
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
	b.Cleanup(tr.CloseIdleConnections)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+backend+r.URL.RequestURI(), r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		out.Header, out.ContentLength = r.Header, r.ContentLength
		resp, err := tr.RoundTrip(out)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				_, _ = w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				break
			}
		}
		for k, vs := range resp.Trailer {
			w.Header()[http.TrailerPrefix+k] = vs
		}
	})
	return startH2(b, h)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkUnary drives unary gRPC calls (4 connections x 16 calls in
// flight, 100-byte messages) straight to a grpc-go backend, through the
// relay, and through the bare x/net/http2 forwarder, in one process.
// cpu-ns/op is the process's CPU time per call (client, proxy and
// backend); the proxy's share is the difference from "direct".
func BenchmarkUnary(b *testing.B) {
	be := startBackend(b, echoBackend(""))
	msg := pattern(100, 1)
	for _, mode := range []string{"direct", "h2relay", "h2forward"} {
		b.Run(mode, func(b *testing.B) {
			addr := be
			switch mode {
			case "h2relay":
				r, _ := relayTo(b, be, func(rt *Route) {})
				addr = r.addr
			case "h2forward":
				addr = startForwarder(b, be)
			}
			ccs := make([]*grpc.ClientConn, 4)
			for i := range ccs {
				ccs[i] = dialGRPC(b, addr)
				if _, err := unary(context.Background(), ccs[i], "/svc/M", msg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			var n atomic.Int64
			var wg sync.WaitGroup
			cpu0 := cpuTime()
			b.ResetTimer()
			for _, c := range ccs {
				for range 16 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for n.Add(1) <= int64(b.N) {
							if _, err := unary(context.Background(), c, "/svc/M", msg); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
