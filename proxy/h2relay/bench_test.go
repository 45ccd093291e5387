//go:build unix

package h2relay

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/vaneproxy/vane/internal/h2forward"
)

// startForwarder is bench/cmd/h2forward in-process.
func startForwarder(b testing.TB, backend string) string {
	h, tr := h2forward.New(backend)
	b.Cleanup(tr.CloseIdleConnections)
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
