package h2relay

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
)

// rawCodec passes gRPC messages as bytes (no generated code).
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case []byte:
		return m, nil
	case *[]byte:
		return *m, nil
	}
	return nil, fmt.Errorf("rawCodec: %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: %T", v)
	}
	*p = append((*p)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

var _ encoding.Codec = rawCodec{}

// backendFunc handles every method of a gRPC test backend.
type backendFunc func(method string, ss grpc.ServerStream) error

// echoBackend echoes every message back, prefixed by tag, until the
// client half-closes.
func echoBackend(tag string) backendFunc {
	return func(method string, ss grpc.ServerStream) error {
		for {
			var m []byte
			if err := ss.RecvMsg(&m); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			if err := ss.SendMsg(append([]byte(tag), m...)); err != nil {
				return err
			}
		}
	}
}

// startBackend serves h for gRPC on a loopback port.
func startBackend(t testing.TB, h backendFunc, opts ...grpc.ServerOption) string {
	addr, _, _ := startBackendServer(t, h, opts...)
	return addr
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func startBackendServer(t testing.TB, h backendFunc, opts ...grpc.ServerOption) (string, *grpc.Server, *countingListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	opts = append(opts, grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		m, _ := grpc.MethodFromServerStream(ss)
		return h(m, ss)
	}))
	s := grpc.NewServer(opts...)
	go func() { _ = s.Serve(cl) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String(), s, cl
}

type handlerFunc func(*Request) Route

func (f handlerFunc) Open(r *Request) Route { return f(r) }

// relay is a Server on a loopback listener.
type relay struct {
	srv  *Server
	pool *Pool
	addr string
	ln   net.Listener
	wg   sync.WaitGroup
}

func startRelay(t testing.TB, srv *Server, pool *Pool) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{srv: srv, pool: pool, addr: ln.Addr().String(), ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				srv.ServeConn(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if pool != nil {
			pool.Close()
		}
		r.wg.Wait()
	})
	return r
}

// relayTo starts a relay sending everything to addr.
func relayTo(t testing.TB, addr string, tweak func(*Route)) (*relay, *Pool) {
	pool := NewPool(PoolOptions{})
	u := pool.Upstream(addr)
	srv := &Server{Handler: handlerFunc(func(r *Request) Route {
		rt := Route{Upstream: u}
		if tweak != nil {
			tweak(&rt)
		}
		return rt
	})}
	return startRelay(t, srv, pool), pool
}

func dialGRPC(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func unary(ctx context.Context, cc *grpc.ClientConn, method string, req []byte) ([]byte, error) {
	var out []byte
	err := cc.Invoke(ctx, method, req, &out)
	return out, err
}

// recObserver records what it sees; failed and respHeaders decide.
type recObserver struct {
	mu          sync.Mutex
	reqBytes    int
	respBytes   int
	status      int
	trailers    []hpack.HeaderField
	fails       []error
	outcome     *Outcome
	done        chan struct{}
	failed      func(err error, retryable bool) (*Attempt, *Response)
	respHeaders func(status int, h []hpack.HeaderField, end bool) *Attempt
}

func newRec() *recObserver { return &recObserver{done: make(chan struct{})} }

func (o *recObserver) RequestData(p []byte) {
	o.mu.Lock()
	o.reqBytes += len(p)
	o.mu.Unlock()
}

func (o *recObserver) ResponseHeaders(status int, h []hpack.HeaderField, end, _ bool) *Attempt {
	o.mu.Lock()
	o.status = status
	o.mu.Unlock()
	if o.respHeaders != nil {
		return o.respHeaders(status, h, end)
	}
	return nil
}

func (o *recObserver) ResponseData(p []byte) {
	o.mu.Lock()
	o.respBytes += len(p)
	o.mu.Unlock()
}

func (o *recObserver) Trailers(h []hpack.HeaderField) {
	o.mu.Lock()
	o.trailers = append([]hpack.HeaderField(nil), h...)
	o.mu.Unlock()
}

func (o *recObserver) Failed(err error, retryable bool) (*Attempt, *Response) {
	o.mu.Lock()
	o.fails = append(o.fails, err)
	o.mu.Unlock()
	if o.failed != nil {
		return o.failed(err, retryable)
	}
	return nil, nil
}

func (o *recObserver) Done(oc Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.outcome != nil {
		panic("Done twice")
	}
	o.outcome = &oc
	close(o.done)
}

func (o *recObserver) wait(t testing.TB) Outcome {
	t.Helper()
	select {
	case <-o.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Observer.Done not called")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return *o.outcome
}

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	_ = ln.Close()
	return a
}

// relayWith starts a relay with small windows, so that flow control is
// exercised, routing with route.
func relayWith(t testing.TB, srv *Server, o PoolOptions, route func(p *Pool, r *Request) Route) (*relay, *Pool) {
	pool := NewPool(o)
	srv.Handler = handlerFunc(func(r *Request) Route { return route(pool, r) })
	return startRelay(t, srv, pool), pool
}

// startH2 serves h over h2c with x/net/http2 on a loopback port.
func startH2(t testing.TB, h http.Handler) string {
	srv := &http2.Server{}
	return serveLoopback(t, func(c net.Conn) { srv.ServeConn(c, &http2.ServeConnOpts{Handler: h}) })
}

// serveLoopback runs serve on each connection accepted on a loopback port
// until the test ends, when the listener and every connection are closed
// and the goroutines waited for. It returns the address.
func serveLoopback(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// h2Client is an x/net/http2 h2c client.
func h2Client() *http.Client {
	return &http.Client{Transport: &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}}
}

func grpcFrame(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...)
}
