package h2relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The fuzz targets bound every wait with hangAfter: a relay that does
// not end a connection or a stream by then is hung, not slow.
const hangAfter = 10 * time.Second

// ---- the Observer contract ----

// fuzzTrack counts the streams a Handler opened and the Done calls, and
// collects the Observer contract's violations.
type fuzzTrack struct {
	opens, dones atomic.Int32
	mu           sync.Mutex // guards errs
	errs         []string
}

func (tr *fuzzTrack) errorf(format string, a ...any) {
	tr.mu.Lock()
	tr.errs = append(tr.errs, fmt.Sprintf(format, a...))
	tr.mu.Unlock()
}

func (tr *fuzzTrack) check(t *testing.T) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, e := range tr.errs {
		t.Error(e)
	}
}

// waitDone waits until every opened stream saw Done.
func (tr *fuzzTrack) waitDone(t *testing.T) {
	t.Helper()
	for end := time.Now().Add(hangAfter); tr.dones.Load() != tr.opens.Load(); {
		if time.Now().After(end) {
			t.Fatalf("%d streams opened, %d Done\n%s", tr.opens.Load(), tr.dones.Load(), stacks())
		}
		time.Sleep(time.Millisecond)
	}
}

// contractObs checks the Observer contract: calls on one side never
// overlap, Done comes once, last, after every other call returned.
type contractObs struct {
	tr        *fuzzTrack
	req, resp atomic.Int32 // calls in progress on each side
	done      atomic.Bool
	// retry is where Failed and a 503's ResponseHeaders send the request
	// again (nil: nowhere); tries bounds it.
	retry *Upstream
	tries int
}

func (tr *fuzzTrack) observer(retry *Upstream) *contractObs {
	tr.opens.Add(1)
	return &contractObs{tr: tr, retry: retry}
}

func (o *contractObs) enter(side *atomic.Int32, what string) {
	if o.done.Load() {
		o.tr.errorf("%s after Done", what)
	}
	if side.Add(1) != 1 {
		o.tr.errorf("%s concurrent with another call on its side", what)
	}
}

func (o *contractObs) leave(side *atomic.Int32) { side.Add(-1) }

func (o *contractObs) RequestData(p []byte) {
	o.enter(&o.req, "RequestData")
	defer o.leave(&o.req)
	if len(p) == 0 {
		o.tr.errorf("RequestData with no bytes")
	}
}

func (o *contractObs) ResponseHeaders(status int, _ []hpack.HeaderField, _, retryable bool) *Attempt {
	o.enter(&o.resp, "ResponseHeaders")
	defer o.leave(&o.resp)
	if status < 200 || status > 999 {
		o.tr.errorf("ResponseHeaders status %d", status)
	}
	if status == 503 && retryable && o.retry != nil && o.tries < 3 {
		o.tries++
		return &Attempt{Upstream: o.retry}
	}
	return nil
}

func (o *contractObs) ResponseData(p []byte) {
	o.enter(&o.resp, "ResponseData")
	defer o.leave(&o.resp)
}

func (o *contractObs) Trailers(_ []hpack.HeaderField) {
	o.enter(&o.resp, "Trailers")
	defer o.leave(&o.resp)
}

func (o *contractObs) Failed(err error, retryable bool) (*Attempt, *Response) {
	o.enter(&o.resp, "Failed")
	defer o.leave(&o.resp)
	if err == nil {
		o.tr.errorf("Failed(nil)")
	}
	if retryable && errors.Is(err, ErrTimeout) {
		o.tr.errorf("Failed(%v) retryable", err)
	}
	if retryable && o.retry != nil && o.tries < 3 {
		o.tries++
		return &Attempt{Upstream: o.retry}, nil
	}
	return nil, nil
}

func (o *contractObs) Done(_ Outcome) {
	if !o.done.CompareAndSwap(false, true) {
		o.tr.errorf("Done twice")
		return
	}
	if o.req.Load() != 0 || o.resp.Load() != 0 {
		o.tr.errorf("Done while another call is in progress")
	}
	o.tr.dones.Add(1)
}

func stacks() string {
	b := make([]byte, 1<<20)
	return string(b[:runtime.Stack(b, true)])
}

// ---- FuzzServeConn: the client side ----

// fuzzUpstreamHandler is the real upstream of FuzzServeConn, by path.
func fuzzUpstreamHandler(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/up/503":
		w.WriteHeader(503)
	case "/up/reset":
		panic(http.ErrAbortHandler) // RST_STREAM
	case "/up/big":
		w.WriteHeader(200)
		chunk := bytes.Repeat([]byte("b"), 16<<10)
		for i := 0; i < 8; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	default: // an echo with gRPC trailers
		w.Header().Set("Trailer", "grpc-status")
		w.Header().Set("content-type", "application/grpc")
		w.WriteHeader(200)
		buf := make([]byte, 4<<10)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
			if err != nil {
				break
			}
		}
		w.Header().Set("grpc-status", "0")
	}
}

// fuzzServe is the Serve route of FuzzServeConn, by path.
func fuzzServe(path string) func(*ServerStream) {
	return func(st *ServerStream) {
		switch path {
		case "/serve/none":
			return // reset INTERNAL_ERROR
		case "/serve/panic":
			panic("fuzz: Serve panics")
		case "/serve/headers":
			_ = st.WriteHeaders(200, nil, false)
			return // ended with an empty DATA frame
		}
		body, err := io.ReadAll(io.LimitReader(st, 1<<20))
		if err != nil {
			st.Reset(http2.ErrCodeCancel)
			return
		}
		if st.WriteHeaders(200, []hpack.HeaderField{{Name: "content-type", Value: "application/grpc"}}, false) != nil {
			return
		}
		if _, err := st.Write(body); err != nil {
			return
		}
		_ = st.WriteTrailers([]hpack.HeaderField{{Name: "grpc-status", Value: "0"}})
	}
}

var fuzzLocal = &Response{
	Status:  200,
	Header:  []hpack.HeaderField{{Name: "content-type", Value: "application/grpc"}},
	Body:    bytes.Repeat([]byte("l"), 80<<10), // more than a stream window
	Trailer: []hpack.HeaderField{{Name: "grpc-status", Value: "0"}},
}

// fuzzHandler routes by path: /up/... to the upstream, /dead to one that
// cannot be dialed, /serve/... to Serve, /local to a Local answer, the
// rest to the default (nil Local: 500).
func fuzzHandler(pool *Pool, upAddr string, tr *fuzzTrack) Handler {
	return handlerFunc(func(r *Request) Route {
		var rt Route
		switch p := r.Path; {
		case strings.HasPrefix(p, "/up/"), p == "/dead":
			u := pool.Upstream(upAddr)
			if p == "/dead" {
				u = pool.Upstream("dead")
			}
			rt = Route{Upstream: u, Observer: tr.observer(u), RetryBuffer: 4 << 10,
				ResponseHeader: []hpack.HeaderField{{Name: "x-vane-version", Value: "v1"}}}
			switch p {
			case "/up/deadline":
				rt.Deadline = time.Now().Add(time.Millisecond)
			case "/up/small":
				rt.MaxRequestBody = 10
			case "/up/header":
				rt.Header = []hpack.HeaderField{}
				rt.Authority = "upstream"
			}
		case strings.HasPrefix(p, "/serve/"):
			rt = Route{Serve: fuzzServe(p), Observer: tr.observer(nil)}
			if p == "/serve/deadline" {
				rt.Deadline = time.Now().Add(time.Millisecond)
			}
		case p == "/local":
			rt = Route{Local: fuzzLocal, Observer: tr.observer(nil)}
		default:
			rt = Route{Observer: tr.observer(nil)}
		}
		return rt
	})
}

// fuzzDial dials TCP, except "dead", which fails at once.
func fuzzDial(ctx context.Context, addr string) (net.Conn, error) {
	if addr == "dead" {
		return nil, errors.New("fuzz: dead upstream")
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// frames builds a client's byte stream with an http2.Framer and hpack.
type frames struct {
	buf bytes.Buffer
	fr  *http2.Framer
	hb  bytes.Buffer
	enc *hpack.Encoder
}

func newFrames() *frames {
	f := &frames{}
	f.fr = http2.NewFramer(&f.buf, nil)
	f.fr.AllowIllegalWrites = true
	f.enc = hpack.NewEncoder(&f.hb)
	return f
}

func (f *frames) block(fields ...string) []byte {
	f.hb.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		_ = f.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return append([]byte(nil), f.hb.Bytes()...)
}

func (f *frames) headers(id uint32, end bool, fields ...string) *frames {
	_ = f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: f.block(fields...), EndHeaders: true, EndStream: end})
	return f
}

func (f *frames) data(id uint32, end bool, p []byte) *frames {
	_ = f.fr.WriteData(id, end, p)
	return f
}

func (f *frames) bytes() []byte { return append([]byte(nil), f.buf.Bytes()...) }

// clientSeeds are FuzzServeConn's seed corpus: what a client sends after
// its preface (magic and SETTINGS).
func clientSeeds() [][]byte {
	msg := grpcFrame([]byte("hello"))
	var seeds [][]byte

	// A valid unary gRPC exchange, and the same on every route.
	f := newFrames()
	_ = f.fr.WriteSettingsAck()
	seeds = append(seeds, f.headers(1, false, withPath("/up/echo")...).data(1, true, msg).bytes())
	f = newFrames()
	for i, p := range []string{"/up/echo", "/up/503", "/up/reset", "/up/big", "/up/deadline", "/up/small", "/up/header",
		"/dead", "/serve/echo", "/serve/none", "/serve/panic", "/serve/headers", "/serve/deadline", "/local", "/nowhere"} {
		id := uint32(2*i + 1)
		f.headers(id, false, withPath(p)...).data(id, false, msg).data(id, true, msg)
	}
	seeds = append(seeds, f.bytes())

	// CONTINUATION.
	f = newFrames()
	b := f.block(append(withPath("/serve/echo"), "x-long", strings.Repeat("c", 300))...)
	_ = f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:10]})
	_ = f.fr.WriteContinuation(1, false, b[10:100])
	_ = f.fr.WriteContinuation(1, true, b[100:])
	seeds = append(seeds, f.data(1, true, msg).bytes())

	// A window update flood, and one past 2^31-1.
	f = newFrames()
	f.headers(1, true, withPath("/up/big")...)
	for i := 0; i < 50; i++ {
		_ = f.fr.WriteWindowUpdate(0, 1)
		_ = f.fr.WriteWindowUpdate(1, 1)
	}
	_ = f.fr.WriteWindowUpdate(1, 1<<31-1)
	_ = f.fr.WriteWindowUpdate(0, 1<<31-1)
	seeds = append(seeds, f.bytes())

	// A reset storm.
	f = newFrames()
	for id := uint32(1); id < 60; id += 2 {
		f.headers(id, false, withPath("/up/echo")...)
		_ = f.fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	seeds = append(seeds, f.bytes())

	// A truncated frame.
	f = newFrames()
	f.headers(1, false, withPath("/serve/echo")...).data(1, true, msg)
	full := f.bytes()
	seeds = append(seeds, full[:len(full)-3])

	// Header blocks with invalid fields.
	f = newFrames()
	f.headers(1, true, append(withPath("/local"), "Upper", "x")...)
	f.headers(3, true, append(withPath("/local"), "connection", "close")...)
	f.headers(5, true, append(withPath("/local"), "te", "gzip")...)
	f.headers(7, true, ":method", "GET", ":scheme", "http")
	f.headers(9, true, "x-first", "1", ":method", "GET", ":scheme", "http", ":path", "/local")
	f.headers(11, true, append(withPath("/up/echo"), "content-length", "x")...)
	f.headers(13, false, append(withPath("/up/echo"), "content-length", "2")...).data(13, true, msg)
	f.headers(15, true, ":method", "GET", ":scheme", "http", ":path", "/local", ":status", "200")
	seeds = append(seeds, f.bytes())
	seeds = append(seeds, append(newFrames().bytes(), 0, 0, 3, 1, 5, 0, 0, 0, 1, 0xff, 0xff, 0xff)) // bad hpack

	// DATA on a closed stream, on stream 0, on an idle stream.
	f = newFrames()
	f.headers(1, true, withPath("/local")...).data(1, false, msg)
	f.headers(3, false, withPath("/up/echo")...)
	_ = f.fr.WriteRSTStream(3, http2.ErrCodeCancel)
	f.data(3, true, msg).data(0, false, msg).data(9, false, msg)
	seeds = append(seeds, f.bytes())

	// PRIORITY, unknown frame types, PING, SETTINGS, GOAWAY, PUSH_PROMISE.
	f = newFrames()
	_ = f.fr.WritePriority(1, http2.PriorityParam{StreamDep: 0, Weight: 16})
	_ = f.fr.WritePriority(3, http2.PriorityParam{StreamDep: 3})
	_ = f.fr.WriteRawFrame(0xfa, 0, 1, []byte("unknown"))
	_ = f.fr.WritePing(false, [8]byte{1})
	_ = f.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1}, http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 14})
	f.headers(5, true, withPath("/up/big")...)
	_ = f.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	_ = f.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	seeds = append(seeds, f.bytes())
	f = newFrames()
	_ = f.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: f.block(withPath("/local")...), EndHeaders: true})
	seeds = append(seeds, f.bytes())

	// Trailers on a request, and headers after them.
	f = newFrames()
	f.headers(1, false, withPath("/up/echo")...).data(1, false, msg).headers(1, true, "x-trailer", "t").headers(1, true, "x-again", "t")
	seeds = append(seeds, f.bytes())
	return seeds
}

// fuzzServer is FuzzServeConn's Server: short timeouts and small limits,
// so that each run is fast and the limits are reached.
func fuzzServer(h Handler) *Server {
	return &Server{Handler: h, MaxConcurrentStreams: 8, StreamWindow: 1 << 15, ConnWindow: 1 << 16,
		MaxHeaderListSize: 1 << 12, IdleTimeout: time.Second, PrefaceTimeout: time.Second,
		WriteTimeout: time.Second, MaxControlFrames: 20, MaxResets: 10}
}

func fuzzPool(dial func(ctx context.Context, addr string) (net.Conn, error)) *Pool {
	return NewPool(PoolOptions{DialTimeout: time.Second, IdleTimeout: time.Second, ReadIdleTimeout: time.Second,
		PingTimeout: time.Second, WriteTimeout: time.Second, StreamWindow: 1 << 15, ConnWindow: 1 << 16, Dial: dial})
}

// FuzzServeConn feeds a client's bytes to ServeConn in front of a real
// upstream, Local and Serve routes. It checks that the relay does not
// panic, ends the connection once the client's bytes end and it closes,
// calls each Observer's Done once and last, and leaves no goroutine.
func FuzzServeConn(f *testing.F) {
	for _, s := range clientSeeds() {
		f.Add(s)
	}
	upAddr := startH2(f, http.HandlerFunc(fuzzUpstreamHandler))
	var preface bytes.Buffer
	preface.WriteString(clientPreface)
	_ = http2.NewFramer(&preface, nil).WriteSettings()
	f.Fuzz(func(t *testing.T, data []byte) {
		before := goleak.IgnoreCurrent()
		tr := &fuzzTrack{}
		pool := fuzzPool(fuzzDial)
		srv := fuzzServer(fuzzHandler(pool, upAddr, tr))
		cli, sc := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			srv.ServeConn(sc)
		}()
		go func() { _, _ = io.Copy(io.Discard, cli) }()
		_ = cli.SetWriteDeadline(time.Now().Add(hangAfter))
		_, err := cli.Write(preface.Bytes())
		if err == nil {
			_, err = cli.Write(data)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the relay stopped reading\n%s", stacks())
		}
		// Let the answers come before closing, briefly.
		for end := time.Now().Add(20 * time.Millisecond); time.Now().Before(end) && tr.dones.Load() != tr.opens.Load(); {
			time.Sleep(100 * time.Microsecond)
		}
		_ = cli.Close()
		select {
		case <-served:
		case <-time.After(hangAfter):
			t.Fatalf("ServeConn still running after the client closed\n%s", stacks())
		}
		pool.Close()
		tr.waitDone(t)
		if err := goleak.Find(before); err != nil {
			t.Fatal(err)
		}
		tr.check(t)
	})
}

// ---- FuzzUpstream: the upstream side ----

// upstreamSeeds are FuzzUpstream's seed corpus: what an upstream sends
// after its SETTINGS, the relay's request being stream 1.
func upstreamSeeds() [][]byte {
	msg := grpcFrame([]byte("answer"))
	resp := []string{":status", "200", "content-type", "application/grpc"}
	var seeds [][]byte

	// A valid answer: headers, data, trailers.
	f := newFrames()
	_ = f.fr.WriteSettingsAck()
	seeds = append(seeds, f.headers(1, false, resp...).data(1, false, msg).headers(1, true, "grpc-status", "0").bytes())
	// Trailers-only, 503 (retried), 1xx first, CONTINUATION.
	seeds = append(seeds, newFrames().headers(1, true, ":status", "200", "grpc-status", "14").bytes())
	seeds = append(seeds, newFrames().headers(1, true, ":status", "503").bytes())
	seeds = append(seeds, newFrames().headers(1, false, ":status", "100").headers(1, true, resp...).bytes())
	f = newFrames()
	b := f.block(append(resp, "x-long", strings.Repeat("c", 200))...)
	_ = f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:5]})
	_ = f.fr.WriteContinuation(1, true, b[5:])
	seeds = append(seeds, f.data(1, true, msg).bytes())
	// Resets, before and after the headers; GOAWAY.
	f = newFrames()
	_ = f.fr.WriteRSTStream(1, http2.ErrCodeRefusedStream)
	seeds = append(seeds, f.bytes())
	f = newFrames()
	f.headers(1, false, resp...).data(1, false, msg)
	_ = f.fr.WriteRSTStream(1, http2.ErrCodeInternal)
	seeds = append(seeds, f.bytes())
	f = newFrames()
	_ = f.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	seeds = append(seeds, f.bytes())
	// Broken answers: no status, DATA before HEADERS, headers twice
	// without END_STREAM, more DATA than the window, a bad window update.
	seeds = append(seeds, newFrames().headers(1, true, "content-type", "x").bytes())
	seeds = append(seeds, newFrames().data(1, true, msg).bytes())
	seeds = append(seeds, newFrames().headers(1, false, resp...).headers(1, false, resp...).bytes())
	f = newFrames()
	f.headers(1, false, resp...)
	big := make([]byte, 16<<10)
	for i := 0; i < 5; i++ {
		f.data(1, false, big)
	}
	seeds = append(seeds, f.bytes())
	f = newFrames()
	_ = f.fr.WriteWindowUpdate(1, 1<<31-1)
	_ = f.fr.WriteWindowUpdate(0, 1<<31-1)
	seeds = append(seeds, f.bytes())
	// Settings, PING, PUSH_PROMISE, an unknown frame, a stream never opened.
	f = newFrames()
	_ = f.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 0}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	_ = f.fr.WritePing(false, [8]byte{})
	_ = f.fr.WriteRawFrame(0xfa, 0, 1, []byte("?"))
	f.headers(3, true, resp...)
	_ = f.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: f.block(withPath("/x")...), EndHeaders: true})
	seeds = append(seeds, f.bytes())
	// A truncated frame.
	full := newFrames().headers(1, false, resp...).data(1, true, msg).bytes()
	seeds = append(seeds, full[:len(full)-2])
	return seeds
}

// FuzzUpstream relays one request to a fake upstream that answers with
// the fuzzer's bytes after its SETTINGS, then closes or goes silent. The
// client gets an answer or a reset, by the route's deadline; nothing
// panics, Done comes once, and no goroutine is left.
func FuzzUpstream(f *testing.F) {
	for _, s := range upstreamSeeds() {
		f.Add(false, s)
		f.Add(true, s)
	}
	var settings bytes.Buffer
	_ = http2.NewFramer(&settings, nil).WriteSettings()
	f.Fuzz(func(t *testing.T, closeAfter bool, data []byte) {
		// The fake upstreams write data on goroutines that end after
		// this function returns by no edge the race detector sees
		// (goleak reads stacks): they get a copy the fuzzer won't reuse.
		data = bytes.Clone(data)
		before := goleak.IgnoreCurrent()
		tr := &fuzzTrack{}
		pool := fuzzPool(func(ctx context.Context, addr string) (net.Conn, error) {
			pc, up := net.Pipe()
			go func() { _, _ = io.Copy(io.Discard, up) }()
			go func() {
				_, err := up.Write(settings.Bytes())
				if err == nil {
					_, _ = up.Write(data)
				}
				if closeAfter {
					_ = up.Close()
				}
			}()
			return pc, nil
		})
		srv := fuzzServer(handlerFunc(func(r *Request) Route {
			u := pool.Upstream("fake")
			return Route{Upstream: u, Observer: tr.observer(u), RetryBuffer: 4 << 10,
				Deadline: time.Now().Add(50 * time.Millisecond)}
		}))
		cli, sc := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			srv.ServeConn(sc)
		}()
		rc := &rawClient{t: t, c: cli, fr: http2.NewFramer(cli, cli)}
		rc.enc = hpack.NewEncoder(&rc.hb)
		rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		_ = cli.SetDeadline(time.Now().Add(hangAfter))
		go func() {
			// The client's side of the exchange; the reads below
			// answer whatever the relay writes meanwhile.
			if _, err := io.WriteString(cli, clientPreface); err != nil {
				return
			}
			if rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30}) != nil ||
				rc.fr.WriteWindowUpdate(0, 1<<30) != nil ||
				rc.headers(1, false, grpcReq...) != nil {
				return
			}
			_ = rc.fr.WriteData(1, true, grpcFrame([]byte("question")))
		}()
		var end http2.Frame
		for end == nil {
			fr, err := rc.fr.ReadFrame()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("stream 1 neither answered nor reset\n%s", stacks())
			}
			if err != nil {
				t.Fatalf("connection ended before stream 1 did: %v", err)
			}
			switch fr := fr.(type) {
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				end = fr
			case *http2.MetaHeadersFrame:
				if fr.StreamEnded() {
					end = fr
				}
			case *http2.DataFrame:
				if fr.StreamEnded() {
					end = fr
				}
			}
		}
		if g, ok := end.(*http2.GoAwayFrame); ok {
			t.Fatalf("the upstream's bytes cost the client its connection: %v", g)
		}
		_ = cli.Close()
		select {
		case <-served:
		case <-time.After(hangAfter):
			t.Fatalf("ServeConn still running after the client closed\n%s", stacks())
		}
		pool.Close()
		tr.waitDone(t)
		if err := goleak.Find(before); err != nil {
			t.Fatal(err)
		}
		tr.check(t)
	})
}
