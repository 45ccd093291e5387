package h2relay

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
)

// Calls canceled at random points, large and small, retried or not:
// every stream ends once (Done), and nothing is left on either side.
func TestStressCancellations(t *testing.T) {
	be := startBackend(t, echoBackend(""))
	srv, o := smallWindows()
	var opened, done atomic.Int64
	r, pool := relayWith(t, srv, o, func(p *Pool, req *Request) Route {
		opened.Add(1)
		obs := &countObs{done: &done}
		return Route{Upstream: p.Upstream(be), Observer: obs, RetryBuffer: 64 << 10}
	})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		cc := dialGRPC(t, r.addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; i < 40; i++ {
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(3) == 0 {
					d := time.Duration(rng.IntN(2000)) * time.Microsecond
					time.AfterFunc(d, cancel)
				}
				size := 10
				if rng.IntN(2) == 0 {
					size = 100<<10 + rng.IntN(100<<10)
				}
				msg := pattern(size, byte(i))
				if rng.IntN(2) == 0 {
					var out []byte
					err := cc.Invoke(ctx, "/svc/U", msg, &out)
					if err == nil && !bytes.Equal(out, msg) {
						t.Errorf("unary: %d bytes back for %d", len(out), len(msg))
					}
				} else {
					s, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/svc/B")
					if err == nil {
						for j := 0; j < 3 && err == nil; j++ {
							if err = s.SendMsg(msg); err == nil {
								var out []byte
								err = s.RecvMsg(&out)
							}
						}
						if err == nil {
							_ = s.CloseSend()
							var out []byte
							_ = s.RecvMsg(&out)
						}
					}
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	// Streams end shortly after the calls return.
	for i := 0; i < 1000 && done.Load() < opened.Load(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if done.Load() != opened.Load() {
		t.Fatalf("%d streams opened, %d done", opened.Load(), done.Load())
	}
	r.srv.mu.Lock()
	for c := range r.srv.conns {
		c.mu.Lock()
		if len(c.streams) != 0 || c.active != 0 {
			t.Errorf("client conn left with %d streams (active %d)", len(c.streams), c.active)
		}
		c.mu.Unlock()
	}
	r.srv.mu.Unlock()
	u := pool.Upstream(be)
	u.mu.Lock()
	for _, c := range u.conns {
		c.mu.Lock()
		if len(c.streams) != 0 || c.active != 0 {
			t.Errorf("upstream conn left with %d streams (active %d)", len(c.streams), c.active)
		}
		c.mu.Unlock()
	}
	if len(u.pending) != 0 {
		t.Errorf("%d streams still pending", len(u.pending))
	}
	u.mu.Unlock()
}

type countObs struct {
	done  *atomic.Int64
	ended atomic.Bool
}

func (o *countObs) RequestData([]byte)                                            {}
func (o *countObs) ResponseHeaders(int, []hpack.HeaderField, bool, bool) *Attempt { return nil }
func (o *countObs) ResponseData([]byte)                                           {}
func (o *countObs) Trailers([]hpack.HeaderField)                                  {}
func (o *countObs) Failed(error, bool) (*Attempt, *Response)                      { return nil, nil }
func (o *countObs) Done(Outcome) {
	if o.ended.Swap(true) {
		panic("Done twice")
	}
	o.done.Add(1)
}
