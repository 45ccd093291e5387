package h2relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestUnaryConcurrent(t *testing.T) {
	be := startBackend(t, echoBackend("echo:"))
	r, _ := relayTo(t, be, nil)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for c := 0; c < 4; c++ {
		cc := dialGRPC(t, r.addr)
		for s := 0; s < 16; s++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					req := []byte(fmt.Sprintf("c%d s%d i%d", c, s, i))
					out, err := unary(ctx, cc, "/svc/Unary", req)
					if err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(out, append([]byte("echo:"), req...)) {
						errs <- fmt.Errorf("got %q for %q", out, req)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func smallWindows() (*Server, PoolOptions) {
	return &Server{StreamWindow: 16 << 10, ConnWindow: 64 << 10}, PoolOptions{StreamWindow: 16 << 10, ConnWindow: 64 << 10}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

func TestBidiLargeMessages(t *testing.T) {
	be := startBackend(t, echoBackend("e"))
	srv, o := smallWindows()
	r, _ := relayWith(t, srv, o, func(p *Pool, _ *Request) Route { return Route{Upstream: p.Upstream(be)} })
	cc := dialGRPC(t, r.addr)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/svc/Bidi")
			if err != nil {
				t.Error(err)
				return
			}
			for i := 0; i < 8; i++ {
				msg := pattern(300<<10+i, byte(g+i))
				if err := s.SendMsg(msg); err != nil {
					t.Error(err)
					return
				}
				var got []byte
				if err := s.RecvMsg(&got); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, append([]byte("e"), msg...)) {
					t.Errorf("message %d: got %d bytes, want %d", i, len(got), len(msg)+1)
					return
				}
			}
			if err := s.CloseSend(); err != nil {
				t.Error(err)
			}
			var m []byte
			if err := s.RecvMsg(&m); err != io.EOF {
				t.Errorf("end: %v", err)
			}
		}()
	}
	wg.Wait()
}

func TestServerStreamingLarge(t *testing.T) {
	be := startBackend(t, func(_ string, ss grpc.ServerStream) error {
		var m []byte
		if err := ss.RecvMsg(&m); err != nil {
			return err
		}
		for i := 0; i < 40; i++ {
			if err := ss.SendMsg(pattern(100<<10, byte(i))); err != nil {
				return err
			}
		}
		return nil
	})
	srv, o := smallWindows()
	obs := newRec()
	r, _ := relayWith(t, srv, o, func(p *Pool, _ *Request) Route { return Route{Upstream: p.Upstream(be), Observer: obs} })
	cc := dialGRPC(t, r.addr)
	s, err := cc.NewStream(ctxT(t), &grpc.StreamDesc{ServerStreams: true}, "/svc/Stream")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg([]byte("go")); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseSend()
	for i := 0; i < 40; i++ {
		var m []byte
		if err := s.RecvMsg(&m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(m, pattern(100<<10, byte(i))) {
			t.Fatalf("message %d differs", i)
		}
		if i == 0 {
			time.Sleep(50 * time.Millisecond) // let the windows fill up
		}
	}
	var m []byte
	if err := s.RecvMsg(&m); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	oc := obs.wait(t)
	if oc.Err != nil || oc.Status != 200 || !oc.HeadersSent || oc.RespBytes != 40*(100<<10+5) || oc.ReqBytes != 7 {
		t.Fatalf("outcome %+v", oc)
	}
}

func TestTrailersOnly(t *testing.T) {
	be := startBackend(t, func(string, grpc.ServerStream) error {
		return status.Error(codes.Unavailable, "busy now")
	})
	obs := newRec()
	r, _ := relayTo(t, be, func(rt *Route) { rt.Observer = obs })
	_, err := unary(ctxT(t), dialGRPC(t, r.addr), "/svc/M", []byte("x"))
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "busy now" {
		t.Fatalf("got %v", err)
	}
	if oc := obs.wait(t); oc.Err != nil || oc.Status != 200 {
		t.Fatalf("outcome %+v", oc)
	}
}

func TestRetryConnectRefused(t *testing.T) {
	be := startBackend(t, echoBackend("second:"))
	dead := freePort(t)
	obs := newRec()
	var retryable []bool
	r, _ := relayWith(t, &Server{}, PoolOptions{}, func(p *Pool, _ *Request) Route {
		obs.failed = func(err error, ok bool) (*Attempt, *Response) {
			retryable = append(retryable, ok)
			if !errors.Is(err, ErrUpstreamConnect) {
				t.Errorf("Failed(%v)", err)
			}
			return &Attempt{Upstream: p.Upstream(be)}, nil
		}
		return Route{Upstream: p.Upstream(dead), RetryBuffer: 1 << 20, Observer: obs}
	})
	out, err := unary(ctxT(t), dialGRPC(t, r.addr), "/svc/M", []byte("hello"))
	if err != nil || string(out) != "second:hello" {
		t.Fatalf("got %q, %v", out, err)
	}
	oc := obs.wait(t)
	if oc.Err != nil || len(retryable) != 1 || !retryable[0] {
		t.Fatalf("outcome %+v retryable %v", oc, retryable)
	}
}

func grpcStatusOf(h []hpack.HeaderField) string {
	for _, f := range h {
		if f.Name == "grpc-status" {
			return f.Value
		}
	}
	return ""
}

func TestRetryTrailersOnlyUnavailable(t *testing.T) {
	var firstCalls atomic.Int32
	first := startBackend(t, func(string, grpc.ServerStream) error {
		firstCalls.Add(1)
		return status.Error(codes.Unavailable, "draining")
	})
	second := startBackend(t, echoBackend("second:"))
	var mu sync.Mutex
	var obss []*recObserver
	r, _ := relayWith(t, &Server{}, PoolOptions{}, func(p *Pool, _ *Request) Route {
		obs := newRec()
		obs.respHeaders = func(status int, h []hpack.HeaderField, end bool) *Attempt {
			if end && grpcStatusOf(h) == "14" {
				return &Attempt{Upstream: p.Upstream(second), ResponseHeader: []hpack.HeaderField{{Name: "x-vane-version", Value: "v2"}}}
			}
			return nil
		}
		mu.Lock()
		obss = append(obss, obs)
		mu.Unlock()
		return Route{Upstream: p.Upstream(first), RetryBuffer: 1 << 20, Observer: obs,
			ResponseHeader: []hpack.HeaderField{{Name: "x-vane-version", Value: "v1"}}}
	})
	cc := dialGRPC(t, r.addr)
	for i := 0; i < 20; i++ {
		var md metadata.MD
		var out []byte
		big := pattern(100<<10, byte(i)) // more than one window's worth held for the retry
		err := cc.Invoke(ctxT(t), "/svc/M", big, &out, grpc.Header(&md))
		if err != nil || !bytes.Equal(out, append([]byte("second:"), big...)) {
			t.Fatalf("call %d: %d bytes, %v", i, len(out), err)
		}
		if v := md.Get("x-vane-version"); len(v) != 1 || v[0] != "v2" {
			t.Fatalf("x-vane-version %v", v)
		}
	}
	if firstCalls.Load() != 20 {
		t.Fatalf("first upstream saw %d calls", firstCalls.Load())
	}
	for _, o := range obss {
		if oc := o.wait(t); oc.Err != nil || oc.ReqBytes != 100<<10+5 {
			t.Fatalf("outcome %+v", oc)
		}
	}
}

func TestClientCancelResetsUpstream(t *testing.T) {
	canceled := make(chan struct{})
	be := startBackend(t, func(_ string, ss grpc.ServerStream) error {
		var m []byte
		if err := ss.RecvMsg(&m); err != nil {
			return err
		}
		if err := ss.SendMsg(m); err != nil {
			return err
		}
		<-ss.Context().Done()
		close(canceled)
		return nil
	})
	obs := newRec()
	r, _ := relayTo(t, be, func(rt *Route) { rt.Observer = obs })
	cc := dialGRPC(t, r.addr)
	ctx, cancel := context.WithCancel(ctxT(t))
	s, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/svc/Bidi")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg([]byte("a")); err != nil {
		t.Fatal(err)
	}
	var m []byte
	if err := s.RecvMsg(&m); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream stream was not canceled")
	}
	if oc := obs.wait(t); !errors.Is(oc.Err, ErrClientReset) || !oc.HeadersSent {
		t.Fatalf("outcome %+v", oc)
	}
}

func TestUpstreamReset(t *testing.T) {
	be := startH2(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/svc/After" {
			w.Header().Set("content-type", "application/grpc")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
		}
		panic(http.ErrAbortHandler)
	}))
	var mu sync.Mutex
	var obss []*recObserver
	r, _ := relayWith(t, &Server{}, PoolOptions{}, func(p *Pool, _ *Request) Route {
		obs := newRec()
		obs.failed = func(err error, retryable bool) (*Attempt, *Response) {
			if !errors.Is(err, ErrUpstreamReset) {
				t.Errorf("Failed(%v)", err)
			}
			return nil, &Response{Status: 200, Header: []hpack.HeaderField{
				{Name: "content-type", Value: "application/grpc"}, {Name: "grpc-status", Value: "14"}, {Name: "grpc-message", Value: "upstream reset"}}}
		}
		mu.Lock()
		obss = append(obss, obs)
		mu.Unlock()
		return Route{Upstream: p.Upstream(be), Observer: obs}
	})
	cc := dialGRPC(t, r.addr)
	_, err := unary(ctxT(t), cc, "/svc/Before", []byte("x"))
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "upstream reset" {
		t.Fatalf("before headers: %v", err)
	}
	_, err = unary(ctxT(t), cc, "/svc/After", []byte("x"))
	if st := status.Convert(err); st.Code() != codes.Internal {
		t.Fatalf("after headers: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if oc := obss[0].wait(t); !errors.Is(oc.Err, ErrUpstreamReset) || oc.Status != 200 {
		t.Fatalf("outcome before %+v", oc)
	}
	if oc := obss[1].wait(t); !errors.Is(oc.Err, ErrUpstreamReset) || !oc.HeadersSent {
		t.Fatalf("outcome after %+v", oc)
	}
}

func TestDeadline(t *testing.T) {
	backendCanceled := make(chan string, 2)
	be := startBackend(t, func(method string, ss grpc.ServerStream) error {
		var m []byte
		if err := ss.RecvMsg(&m); err != nil {
			return err
		}
		if method == "/svc/After" {
			if err := ss.SendHeader(metadata.Pairs("k", "v")); err != nil {
				return err
			}
		}
		<-ss.Context().Done()
		backendCanceled <- method
		return nil
	})
	var mu sync.Mutex
	var obss []*recObserver
	r, _ := relayWith(t, &Server{}, PoolOptions{}, func(p *Pool, _ *Request) Route {
		obs := newRec()
		obs.failed = func(err error, retryable bool) (*Attempt, *Response) {
			if !errors.Is(err, ErrTimeout) || retryable {
				t.Errorf("Failed(%v, %v)", err, retryable)
			}
			return nil, &Response{Status: 200, Header: []hpack.HeaderField{
				{Name: "content-type", Value: "application/grpc"}, {Name: "grpc-status", Value: "4"}}}
		}
		mu.Lock()
		obss = append(obss, obs)
		mu.Unlock()
		return Route{Upstream: p.Upstream(be), Observer: obs, Deadline: time.Now().Add(100 * time.Millisecond), RetryBuffer: 1024}
	})
	cc := dialGRPC(t, r.addr)
	_, err := unary(ctxT(t), cc, "/svc/Before", []byte("x"))
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("before headers: %v", err)
	}
	_, err = unary(ctxT(t), cc, "/svc/After", []byte("x"))
	if status.Code(err) != codes.Canceled {
		t.Fatalf("after headers: %v", err)
	}
	for range 2 {
		select {
		case <-backendCanceled:
		case <-time.After(10 * time.Second):
			t.Fatal("upstream stream not canceled")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if oc := obss[0].wait(t); !errors.Is(oc.Err, ErrTimeout) {
		t.Fatalf("outcome before %+v", oc)
	}
	if oc := obss[1].wait(t); !errors.Is(oc.Err, ErrTimeout) || !oc.HeadersSent {
		t.Fatalf("outcome after %+v", oc)
	}
}

func TestLocalRoute(t *testing.T) {
	big := pattern(1<<20, 3)
	srv, o := smallWindows()
	r, _ := relayWith(t, srv, o, func(p *Pool, req *Request) Route {
		if req.Path == "/big" {
			return Route{Local: &Response{Status: 200, Header: []hpack.HeaderField{{Name: "x-a", Value: "b"}}, Body: big}}
		}
		return Route{Local: &Response{Status: 200,
			Header:  []hpack.HeaderField{{Name: "content-type", Value: "application/grpc"}},
			Body:    grpcFrame([]byte("local answer")),
			Trailer: []hpack.HeaderField{{Name: "grpc-status", Value: "0"}}}}
	})
	out, err := unary(ctxT(t), dialGRPC(t, r.addr), "/svc/M", []byte("x"))
	if err != nil || string(out) != "local answer" {
		t.Fatalf("grpc: %q %v", out, err)
	}
	resp, err := h2Client().Get("http://" + r.addr + "/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(20 * time.Millisecond)
	b, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(b, big) || resp.Header.Get("x-a") != "b" {
		t.Fatalf("big: %d bytes, %v", len(b), err)
	}
}

func TestServeRoute(t *testing.T) {
	srv, o := smallWindows()
	r, _ := relayWith(t, srv, o, func(p *Pool, req *Request) Route {
		return Route{Serve: func(st *ServerStream) {
			body, err := io.ReadAll(st)
			if err != nil {
				st.Reset(http2.ErrCodeInternal)
				return
			}
			if err := st.WriteHeaders(201, []hpack.HeaderField{{Name: "x-len", Value: fmt.Sprint(len(body))}}, false); err != nil {
				return
			}
			if _, err := st.Write(body); err != nil {
				return
			}
			_ = st.WriteTrailers([]hpack.HeaderField{{Name: "x-done", Value: "yes"}})
		}}
	})
	body := pattern(700<<10, 9)
	resp, err := h2Client().Post("http://"+r.addr+"/echo", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 201 || !bytes.Equal(b, body) || resp.Header.Get("x-len") != fmt.Sprint(len(body)) {
		t.Fatalf("status %d, %d bytes, %v", resp.StatusCode, len(b), err)
	}
	if resp.Trailer.Get("x-done") != "yes" {
		t.Fatalf("trailer %v", resp.Trailer)
	}
}

// A panic in Serve resets its stream INTERNAL_ERROR, before or after the
// response headers, and the connection goes on serving.
func TestServePanic(t *testing.T) {
	obs := map[string]*recObserver{"/before": newRec(), "/after": newRec(), "/ok": newRec()}
	r, _ := relayWith(t, &Server{}, PoolOptions{}, func(p *Pool, req *Request) Route {
		path := req.Path
		return Route{Observer: obs[path], Serve: func(st *ServerStream) {
			switch path {
			case "/before":
				panic("before the headers")
			case "/after":
				_ = st.WriteHeaders(200, nil, false)
				_, _ = st.Write([]byte("partial"))
				panic(errors.New("after the headers"))
			}
			_ = st.WriteHeaders(200, nil, true)
		}}
	})
	rc := dialRaw(t, r.addr)
	for i, path := range []string{"/before", "/after"} {
		id := uint32(2*i + 1)
		if err := rc.headers(id, true, withPath(path)...); err != nil {
			t.Fatal(err)
		}
		f, err := rc.until(func(f http2.Frame) bool {
			_, ok := f.(*http2.RSTStreamFrame)
			return ok || f.Header().Type == http2.FrameGoAway
		})
		if err != nil {
			t.Fatal(err)
		}
		if rs, ok := f.(*http2.RSTStreamFrame); !ok || rs.StreamID != id || rs.ErrCode != http2.ErrCodeInternal {
			t.Fatalf("%s: got %v, want RST_STREAM %d INTERNAL_ERROR", path, f, id)
		}
		if o := obs[path].wait(t); !errors.Is(o.Err, ErrServeReset) || !strings.Contains(o.Err.Error(), "panicked") {
			t.Fatalf("%s: outcome %+v", path, o)
		}
	}
	if err := rc.headers(5, true, withPath("/ok")...); err != nil {
		t.Fatal(err)
	}
	f, err := rc.until(func(f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		return ok && h.StreamID == 5 || f.Header().Type == http2.FrameGoAway
	})
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := f.(*http2.MetaHeadersFrame); !ok || h.PseudoValue("status") != "200" || !h.StreamEnded() {
		t.Fatalf("after the panics: %v", f)
	}
	if o := obs["/ok"].wait(t); o.Err != nil || o.Status != 200 {
		t.Fatalf("/ok: outcome %+v", o)
	}
}

func ctxT2(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMaxRequestBody(t *testing.T) {
	be := startBackend(t, echoBackend(""))
	obs := make(chan *recObserver, 4)
	r, _ := relayWith(t, &Server{}, PoolOptions{}, func(p *Pool, _ *Request) Route {
		o := newRec()
		obs <- o
		return Route{Upstream: p.Upstream(be), MaxRequestBody: 1000, Observer: o}
	})
	c := h2Client()
	for _, declared := range []bool{true, false} {
		// A whole gRPC message: the backend answers only once it has it.
		body := io.Reader(bytes.NewReader(grpcFrame(pattern(5000, 1))))
		if !declared {
			body = io.MultiReader(body) // no content-length
		}
		req, _ := http.NewRequest("POST", "http://"+r.addr+"/svc/M", body)
		req.Header.Set("content-type", "application/grpc")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("declared %v: status %d", declared, resp.StatusCode)
		}
		if oc := (<-obs).wait(t); !errors.Is(oc.Err, ErrRequestTooLarge) || oc.Status != 413 {
			t.Fatalf("outcome %+v", oc)
		}
	}
}

func TestIdleTimeouts(t *testing.T) {
	be, _, ln := startBackendServer(t, echoBackend(""))
	r, _ := relayWith(t, &Server{IdleTimeout: 50 * time.Millisecond}, PoolOptions{IdleTimeout: 50 * time.Millisecond}, func(p *Pool, _ *Request) Route {
		return Route{Upstream: p.Upstream(be)}
	})
	rc := dialRaw(t, r.addr)
	f, err := rc.until(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	if err != nil || f.(*http2.GoAwayFrame).ErrCode != http2.ErrCodeNo {
		t.Fatalf("idle client conn: %v %v", f, err)
	}
	r2, _ := relayWith(t, &Server{}, PoolOptions{IdleTimeout: 50 * time.Millisecond}, func(p *Pool, _ *Request) Route {
		return Route{Upstream: p.Upstream(be)}
	})
	cc := dialGRPC(t, r2.addr)
	for ln.n.Load() < 3 {
		if _, err := unary(ctxT2(t), cc, "/svc/M", []byte("x")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond) // idle: the upstream connection goes
	}
}
