package h2relay

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
)

// Streams over the upstream's MAX_CONCURRENT_STREAMS go on more
// connections to it.
func TestPoolSeveralConnsPerUpstream(t *testing.T) {
	be, _, ln := startBackendServer(t, echoBackend(""), grpc.MaxConcurrentStreams(4))
	r, _ := relayTo(t, be, nil)
	cc := dialGRPC(t, r.addr)
	const n = 18
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := cc.NewStream(ctxT2(t), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/svc/Bidi")
			if err != nil {
				t.Error(err)
				started.Done()
				return
			}
			var m []byte
			err = s.SendMsg([]byte("x"))
			if err == nil {
				err = s.RecvMsg(&m)
			}
			started.Done()
			if err != nil {
				t.Error(err)
				return
			}
			<-release
			_ = s.CloseSend()
			if err := s.RecvMsg(&m); err != io.EOF {
				t.Error(err)
			}
		}()
	}
	started.Wait()
	close(release)
	wg.Wait()
	if c := ln.n.Load(); c < n/4 {
		t.Fatalf("%d streams in flight on %d upstream connections", n, c)
	}
}

// An upstream connection that got GOAWAY finishes its streams and takes
// no new ones.
func TestPoolUpstreamGoAway(t *testing.T) {
	first, firstSrv, _ := startBackendServer(t, echoBackend("first:"))
	second := startBackend(t, echoBackend("second:"))
	r, _ := relayWith(t, &Server{}, PoolOptions{}, func(p *Pool, _ *Request) Route {
		obs := newRec()
		obs.failed = func(err error, retryable bool) (*Attempt, *Response) {
			if retryable {
				return &Attempt{Upstream: p.Upstream(second)}, nil
			}
			return nil, nil
		}
		return Route{Upstream: p.Upstream(first), RetryBuffer: 4096, Observer: obs}
	})
	cc := dialGRPC(t, r.addr)
	s, err := cc.NewStream(ctxT2(t), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/svc/Bidi")
	if err != nil {
		t.Fatal(err)
	}
	var m []byte
	if err := s.SendMsg([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.RecvMsg(&m); err != nil || string(m) != "first:a" {
		t.Fatalf("%q %v", m, err)
	}
	stopped := make(chan struct{})
	go func() { firstSrv.GracefulStop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond) // GOAWAY on its way
	for i := 0; i < 5; i++ {
		out, err := unary(ctxT2(t), cc, "/svc/M", []byte("b"))
		if err != nil || string(out) != "second:b" {
			t.Fatalf("after GOAWAY: %q %v", out, err)
		}
	}
	// The stream in flight finishes on the going-away connection.
	if err := s.SendMsg([]byte("c")); err != nil {
		t.Fatal(err)
	}
	if err := s.RecvMsg(&m); err != nil || string(m) != "first:c" {
		t.Fatalf("%q %v", m, err)
	}
	_ = s.CloseSend()
	if err := s.RecvMsg(&m); err != io.EOF {
		t.Fatal(err)
	}
	<-stopped
}

func TestServerShutdown(t *testing.T) {
	be := startBackend(t, echoBackend(""))
	r, _ := relayTo(t, be, nil)
	cc := dialGRPC(t, r.addr)
	s, err := cc.NewStream(ctxT2(t), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/svc/Bidi")
	if err != nil {
		t.Fatal(err)
	}
	var m []byte
	if err := s.SendMsg([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.RecvMsg(&m); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.srv.Shutdown(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a stream live", err)
	default:
	}
	if err := s.SendMsg([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := s.RecvMsg(&m); err != nil || string(m) != "b" {
		t.Fatalf("%q %v", m, err)
	}
	_ = s.CloseSend()
	if err := s.RecvMsg(&m); err != io.EOF {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	// Bounded by the context when a stream stays.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}
