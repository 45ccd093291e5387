package h2relay

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawClient speaks HTTP/2 frame by frame.
type rawClient struct {
	t   testing.TB
	c   net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
}

func dialRaw(t testing.TB, addr string, settings ...http2.Setting) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	rc := &rawClient{t: t, c: c, fr: http2.NewFramer(c, c)}
	rc.enc = hpack.NewEncoder(&rc.hb)
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, clientPreface); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	f, err := rc.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.(*http2.SettingsFrame); !ok {
		t.Fatalf("first frame %T", f)
	}
	if err := rc.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	return rc
}

func (rc *rawClient) block(fields ...string) []byte {
	rc.hb.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		_ = rc.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return append([]byte(nil), rc.hb.Bytes()...)
}

func (rc *rawClient) headers(id uint32, end bool, fields ...string) error {
	return rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.block(fields...), EndHeaders: true, EndStream: end})
}

var grpcReq = []string{":method", "POST", ":scheme", "http", ":authority", "relay", ":path", "/svc/M", "content-type", "application/grpc", "te", "trailers"}

func withPath(p string) []string {
	f := append([]string(nil), grpcReq...)
	f[7] = p
	return f
}

// until reads frames until match says so; the connection's end or error
// is returned as a nil frame.
func (rc *rawClient) until(match func(http2.Frame) bool) (http2.Frame, error) {
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		if match(f) {
			return f, nil
		}
	}
}

// blockingServe is a Serve route that waits for the request body's end.
func blockingServe(p *Pool, r *Request) Route {
	return Route{Serve: func(st *ServerStream) {
		_, _ = io.Copy(io.Discard, st)
		_ = st.WriteHeaders(200, nil, true)
	}}
}

func TestHostileTooManyStreams(t *testing.T) {
	r, _ := relayWith(t, &Server{MaxConcurrentStreams: 3}, PoolOptions{}, blockingServe)
	rc := dialRaw(t, r.addr)
	for id := uint32(1); id <= 7; id += 2 {
		if err := rc.headers(id, false, grpcReq...); err != nil {
			t.Fatal(err)
		}
	}
	f, err := rc.until(func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok })
	if err != nil {
		t.Fatal(err)
	}
	if rs := f.(*http2.RSTStreamFrame); rs.StreamID != 7 || rs.ErrCode != http2.ErrCodeRefusedStream {
		t.Fatalf("got %v", rs)
	}
	// Ending a stream makes room again.
	if err := rc.fr.WriteData(1, true, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.until(func(f http2.Frame) bool { h, ok := f.(*http2.MetaHeadersFrame); return ok && h.StreamID == 1 }); err != nil {
		t.Fatal(err)
	}
	if err := rc.headers(9, true, grpcReq...); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.until(func(f http2.Frame) bool { h, ok := f.(*http2.MetaHeadersFrame); return ok && h.StreamID == 9 }); err != nil {
		t.Fatal(err)
	}
}

func TestHostileRapidReset(t *testing.T) {
	r, _ := relayWith(t, &Server{}, PoolOptions{}, blockingServe)
	rc := dialRaw(t, r.addr)
	go func() {
		for id := uint32(1); id < 1000; id += 2 {
			if rc.headers(id, false, grpcReq...) != nil || rc.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return
			}
		}
	}()
	f, err := rc.until(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	if err != nil {
		t.Fatal(err)
	}
	if g := f.(*http2.GoAwayFrame); g.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("got %v", g)
	}
	if _, err := rc.until(func(http2.Frame) bool { return false }); err == nil {
		t.Fatal("connection still open")
	}
}

func TestHostileOversizedHeaders(t *testing.T) {
	r, _ := relayWith(t, &Server{MaxHeaderListSize: 4096}, PoolOptions{}, blockingServe)
	rc := dialRaw(t, r.addr)
	if err := rc.headers(1, true, append(grpcReq, "x-big1", strings.Repeat("a", 3000), "x-big2", strings.Repeat("b", 3000))...); err != nil {
		t.Fatal(err)
	}
	f, err := rc.until(func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok })
	if err != nil {
		t.Fatal(err)
	}
	if s := f.(*http2.MetaHeadersFrame).PseudoValue("status"); s != "431" {
		t.Fatalf("status %s", s)
	}
	// The connection still serves.
	if err := rc.headers(3, true, grpcReq...); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.until(func(f http2.Frame) bool { h, ok := f.(*http2.MetaHeadersFrame); return ok && h.StreamID == 3 }); err != nil {
		t.Fatal(err)
	}
}

func TestHostileContinuationFlood(t *testing.T) {
	r, _ := relayWith(t, &Server{MaxHeaderListSize: 8192}, PoolOptions{}, blockingServe)
	rc := dialRaw(t, r.addr)
	go func() {
		if rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.block(grpcReq...)}) != nil {
			return
		}
		junk := rc.block("x-junk", strings.Repeat("j", 4000))
		for i := 0; i < 100000; i++ {
			if rc.fr.WriteContinuation(1, false, junk) != nil {
				return
			}
		}
	}()
	f, err := rc.until(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	if err != nil {
		t.Fatal(err)
	}
	if g := f.(*http2.GoAwayFrame); g.ErrCode != http2.ErrCodeProtocol {
		t.Fatalf("got %v", g)
	}
}

func TestHostilePingFlood(t *testing.T) {
	r, _ := relayWith(t, &Server{WriteTimeout: 200 * time.Millisecond}, PoolOptions{}, blockingServe)
	rc := dialRaw(t, r.addr)
	var err error
	for i := 0; i < 1000000 && err == nil; i++ {
		err = rc.fr.WritePing(false, [8]byte{byte(i)})
	}
	if err == nil {
		t.Fatal("a million unread PINGs were all accepted")
	}
}

func TestHostileProtocolErrors(t *testing.T) {
	r, _ := relayWith(t, &Server{}, PoolOptions{}, blockingServe)
	for name, bad := range map[string]func(rc *rawClient) error{
		"even stream id": func(rc *rawClient) error { return rc.headers(2, true, grpcReq...) },
		"data on idle stream": func(rc *rawClient) error {
			return rc.fr.WriteData(5, true, []byte("x"))
		},
		"window overflow": func(rc *rawClient) error {
			return rc.fr.WriteWindowUpdate(0, 1<<31-1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, r.addr)
			if err := bad(rc); err != nil {
				t.Fatal(err)
			}
			f, err := rc.until(func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
			if err != nil {
				t.Fatal(err)
			}
			if g := f.(*http2.GoAwayFrame); g.ErrCode != http2.ErrCodeProtocol && g.ErrCode != http2.ErrCodeFlowControl {
				t.Fatalf("got %v", g)
			}
		})
	}
}

// A client that never reads, with windows wide open, is dropped after
// the write timeout; the other clients' calls through the same upstream
// connection go on.
func TestHostileNonReadingClient(t *testing.T) {
	r, pool, be, flood, _ := startFlood(t, 200*time.Millisecond)
	cc := dialGRPC(t, r.addr)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				out, err := unary(ctxT2(t), cc, "/svc/Unary", []byte("hi"))
				if err != nil || string(out) != "hi" {
					t.Errorf("call: %q %v", out, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	oc := flood.wait(t)
	if !errors.Is(oc.Err, ErrClientGone) {
		t.Fatalf("flood outcome %+v", oc)
	}
	u := pool.Upstream(be)
	u.mu.Lock()
	n := len(u.conns)
	u.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d upstream connections", n)
	}
}

func TestHostileSilentClient(t *testing.T) {
	r, _ := relayWith(t, &Server{PrefaceTimeout: 50 * time.Millisecond}, PoolOptions{}, blockingServe)
	for _, send := range []string{"", clientPreface, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"} {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c, send); err != nil {
			t.Fatal(err)
		}
		// Whatever the relay wrote (its SETTINGS), the connection ends.
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("sent %q: %v", send, err)
		}
		_ = c.Close()
	}
}

func TestHostileMalformedRequests(t *testing.T) {
	r, _ := relayWith(t, &Server{}, PoolOptions{}, blockingServe)
	rc := dialRaw(t, r.addr)
	cases := []struct {
		fields []string
		end    bool
		data   []byte
	}{
		{append(withPath("/a"), "connection", "close"), true, nil},
		{append(withPath("/a"), "te", "gzip"), true, nil},
		{append(withPath("/a"), "content-length", "5"), false, []byte("toolong")},
		{append(withPath("/a"), "content-length", "5"), false, []byte("abc")},
		{append(withPath("/a"), "content-length", "x"), true, nil},
		{[]string{":method", "GET", ":scheme", "http"}, true, nil}, // no :path
	}
	id := uint32(1)
	for i, tc := range cases {
		if err := rc.headers(id, tc.end, tc.fields...); err != nil {
			t.Fatal(err)
		}
		if tc.data != nil {
			if err := rc.fr.WriteData(id, true, tc.data); err != nil {
				t.Fatal(err)
			}
		}
		f, err := rc.until(func(f http2.Frame) bool { return f.Header().StreamID == id })
		if err != nil {
			t.Fatal(err)
		}
		if rs, ok := f.(*http2.RSTStreamFrame); !ok || rs.ErrCode != http2.ErrCodeProtocol {
			t.Fatalf("case %d: got %v", i, f)
		}
		id += 2
	}
	// A well-formed one still goes through.
	if err := rc.headers(id, false, append(withPath("/a"), "content-length", "3")...); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteData(id, true, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	f, err := rc.until(func(f http2.Frame) bool { return f.Header().StreamID == id })
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := f.(*http2.MetaHeadersFrame); !ok || h.PseudoValue("status") != "200" {
		t.Fatalf("got %v", f)
	}
}
