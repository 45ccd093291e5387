package h2relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
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

// startRawUpstream is an h2c upstream written frame by frame: onFrame
// sees every frame but SETTINGS.
func startRawUpstream(t testing.TB, onFrame func(fr *http2.Framer, f http2.Frame)) string {
	return serveLoopback(t, func(c net.Conn) {
		defer c.Close()
		var pf [len(clientPreface)]byte
		if _, err := io.ReadFull(c, pf[:]); err != nil {
			return
		}
		fr := http2.NewFramer(c, c)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		if fr.WriteSettings() != nil {
			return
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if sf, ok := f.(*http2.SettingsFrame); ok {
				if !sf.IsAck() && fr.WriteSettingsAck() != nil {
					return
				}
				continue
			}
			onFrame(fr, f)
		}
	})
}

func TestRetryRefusedStream(t *testing.T) {
	refusing := startRawUpstream(t, func(fr *http2.Framer, f http2.Frame) {
		if _, ok := f.(*http2.MetaHeadersFrame); ok {
			_ = fr.WriteRSTStream(f.Header().StreamID, http2.ErrCodeRefusedStream)
		}
	})
	second := startBackend(t, echoBackend("second:"))
	obs := newRec()
	r, _ := relayWith(t, &Server{}, PoolOptions{}, func(p *Pool, _ *Request) Route {
		obs.failed = func(err error, retryable bool) (*Attempt, *Response) {
			var re ResetError
			if !errors.Is(err, ErrUpstreamReset) || !errors.As(err, &re) || re.Code != http2.ErrCodeRefusedStream || !retryable {
				t.Errorf("Failed(%v, %v)", err, retryable)
			}
			return &Attempt{Upstream: p.Upstream(second)}, nil
		}
		return Route{Upstream: p.Upstream(refusing), RetryBuffer: 1 << 16, Observer: obs}
	})
	out, err := unary(ctxT2(t), dialGRPC(t, r.addr), "/svc/M", []byte("x"))
	if err != nil || string(out) != "second:x" {
		t.Fatalf("%q %v", out, err)
	}
	if oc := obs.wait(t); oc.Err != nil || len(obs.fails) != 1 {
		t.Fatalf("outcome %+v, fails %v", oc, obs.fails)
	}
}

// A request body larger than RetryBuffer is not retried: Failed hears
// retryable false.
func TestNoRetryPastRetryBuffer(t *testing.T) {
	got := 0 // body bytes: refused once past RetryBuffer
	refusing := startRawUpstream(t, func(fr *http2.Framer, f http2.Frame) {
		if d, ok := f.(*http2.DataFrame); ok {
			got += len(d.Data())
			if got > 100 && got-len(d.Data()) <= 100 {
				_ = fr.WriteRSTStream(f.Header().StreamID, http2.ErrCodeRefusedStream)
			}
		}
	})
	obs := newRec()
	r, _ := relayWith(t, &Server{}, PoolOptions{}, func(p *Pool, _ *Request) Route {
		obs.failed = func(err error, retryable bool) (*Attempt, *Response) {
			if retryable {
				t.Errorf("retryable with a body past RetryBuffer")
			}
			return nil, &Response{Status: 503}
		}
		return Route{Upstream: p.Upstream(refusing), RetryBuffer: 100, Observer: obs}
	})
	resp, err := h2Client().Post("http://"+r.addr+"/x", "application/octet-stream", bytes.NewReader(pattern(1000, 0)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	obs.wait(t)
}

// An upstream that accepts but never speaks HTTP/2 fails the dial
// (DialTimeout); a stream waiting for it meets its deadline first when
// that is sooner.
func TestSilentUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range held {
			_ = c.Close()
		}
		mu.Unlock()
	})
	silent := ln.Addr().String()
	good := startBackend(t, echoBackend("good:"))
	errs := make(chan error, 4)
	r, _ := relayWith(t, &Server{}, PoolOptions{DialTimeout: 300 * time.Millisecond}, func(p *Pool, req *Request) Route {
		obs := newRec()
		obs.failed = func(err error, retryable bool) (*Attempt, *Response) {
			errs <- err
			if retryable {
				return &Attempt{Upstream: p.Upstream(good)}, nil
			}
			return nil, nil
		}
		rt := Route{Upstream: p.Upstream(silent), RetryBuffer: 1024, Observer: obs}
		if req.Path == "/svc/Deadline" {
			rt.Deadline = time.Now().Add(time.Millisecond)
		}
		return rt
	})
	cc := dialGRPC(t, r.addr)
	out, err := unary(ctxT2(t), cc, "/svc/M", []byte("x"))
	if err != nil || string(out) != "good:x" {
		t.Fatalf("%q %v", out, err)
	}
	if err := <-errs; !errors.Is(err, ErrUpstreamConnect) {
		t.Fatalf("Failed(%v)", err)
	}
	_, err = unary(ctxT2(t), cc, "/svc/Deadline", []byte("x"))
	if err == nil {
		t.Fatal("no error past the deadline")
	}
	if err := <-errs; !errors.Is(err, ErrTimeout) {
		t.Fatalf("Failed(%v)", err)
	}
}

// A connection whose upstream stops answering (not even PINGs) is
// closed; its streams fail with ErrUpstreamLost.
func TestUpstreamReadIdlePing(t *testing.T) {
	mute := startRawUpstream(t, func(*http2.Framer, http2.Frame) {})
	obs := newRec()
	r, _ := relayWith(t, &Server{}, PoolOptions{ReadIdleTimeout: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond}, func(p *Pool, _ *Request) Route {
		obs.failed = func(err error, retryable bool) (*Attempt, *Response) {
			return nil, &Response{Status: 503}
		}
		return Route{Upstream: p.Upstream(mute), Observer: obs}
	})
	resp, err := h2Client().Get("http://" + r.addr + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if oc := obs.wait(t); !errors.Is(oc.Err, ErrUpstreamLost) {
		t.Fatalf("outcome %+v", oc)
	}
}
