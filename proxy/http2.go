package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"sync"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"

	"github.com/vaneproxy/vane/routing"
)

// target is what the HTTP/2 request path hands the reverse proxy.
type target struct {
	ep    *routing.Endpoint
	vm    *versionMetrics
	model string
	ver   string
	rid   string
	// err is the upstream error the ErrorHandler saw, classified, for
	// the breaker.
	err error
	// client is the client's request context (not the one with the
	// model's timeout), body the watch on its request body, nil for none.
	client context.Context
	body   *bodyWatch
	// trusted and peer decide the forwarded headers.
	trusted []netip.Prefix
	peer    netip.Addr
}

type targetKey struct{}

// maxUpstreamConnsH2 caps the HTTP/1.1 connections that requests arriving
// over h2c open to one endpoint; more streams wait for one.
const maxUpstreamConnsH2 = 256

// transports carry the net/http side: HTTP/2 cleartext to h2c:// endpoints
// and HTTP/1.1 to http:// endpoints. Neither consults proxy environment
// variables: vane dials only configured endpoints.
type transports struct {
	h1 *http.Transport
	h2 *http2.Transport
}

func newTransports() *transports {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &transports{
		h1: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: 256,
			// Streams share connections: beyond this many per endpoint
			// a stream waits for one (within its model's timeout) rather
			// than each of thousands of streams dialing its own.
			MaxConnsPerHost:   maxUpstreamConnsH2,
			IdleConnTimeout:   90 * time.Second,
			ForceAttemptHTTP2: false,
		},
		h2: &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			ReadIdleTimeout: 30 * time.Second,
		},
	}
}

// RoundTrip sends the request over the transport its endpoint needs.
func (t *transports) RoundTrip(r *http.Request) (*http.Response, error) {
	tg, _ := r.Context().Value(targetKey{}).(*target)
	if tg != nil && tg.ep.Scheme == "h2c" {
		return t.h2.RoundTrip(r)
	}
	return t.h1.RoundTrip(r)
}

func (s *Server) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			tg := pr.In.Context().Value(targetKey{}).(*target)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = tg.ep.Addr
			pr.Out.Host = pr.In.Host
			forwarded2(pr.In, pr.Out, tg.trusted, tg.peer)
			pr.Out.Header.Del(HeaderVersion)
			pr.Out.Header.Set(HeaderRequestID, tg.rid)
		},
		Transport: s.transports,
		// Zero, not -1: ReverseProxy already flushes every write of an
		// answer of unknown length (gRPC streams, SSE). A fixed -1 also
		// starts a timer that flushes the headers at once from another
		// goroutine, which races the handler's return: a gRPC
		// trailers-only answer (grpc-status in HEADERS with END_STREAM)
		// then went out as HEADERS + an empty DATA, and grpc-go clients
		// saw "server closed the stream without sending trailers"
		// instead of the backend's status.
		FlushInterval: 0,
		ModifyResponse: func(resp *http.Response) error {
			tg := resp.Request.Context().Value(targetKey{}).(*target)
			resp.Header.Set(HeaderVersion, tg.ver)
			resp.Header.Set(HeaderRequestID, tg.rid)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			tg := r.Context().Value(targetKey{}).(*target)
			err = classify(err, tg.clientSide(r))
			tg.vm.upstreamError(err)
			tg.err = err
			writeError(w, r, err, tg.model, tg.ver, tg.rid)
		},
		ErrorLog: nil,
	}
}

// serveHTTP2 is the request path of connections that arrived as h2c.
func (s *Server) serveHTTP2(w http.ResponseWriter, r *http.Request) {
	defer s.access2(&w, r)() // accesslog.go
	rid := r.Header.Get(HeaderRequestID)
	if rid == "" {
		rid = string(s.ids.appendNext(nil))
		r.Header.Set(HeaderRequestID, rid)
	}
	x := exchangePool.Get().(*exchange)
	defer exchangePool.Put(x)
	x.init(s, s.snap.Load(), strBytes(rid), s.now())
	x.grpc = isGRPC(r)
	x.a.log = accessOf2(w)
	if err := x.route(strBytes(r.Host), strBytes(r.URL.Path), netHeaders(r.Header)); err != nil {
		s.fail2(w, r, x, err)
		return
	}
	var sticky string
	if h := x.mod.Config.Routing.StickyHeader; h != "" {
		sticky = r.Header.Get(h)
	}
	if err := x.pick(strBytes(r.Header.Get(HeaderVersion)), strBytes(sticky)); err != nil {
		s.fail2(w, r, x, err)
		return
	}
	// HTTP/2 requests through net/http are not retried (their bodies
	// stream), but breakers and limits apply as on HTTP/1.1.
	if ok, err := x.admit(); !ok {
		s.fail2(w, r, x, err)
		return
	}
	s.relay2(w, r, x)
}

// relay2 carries the exchange's one attempt through the reverse proxy.
func (s *Server) relay2(w http.ResponseWriter, r *http.Request, x *exchange) {
	// The model's timeout bounds the stream, its writing included: a
	// client holding a zero window gives its slot back at the deadline.
	_ = http.NewResponseController(w).SetWriteDeadline(x.deadline.Add(writeGrace))
	ctx, cancel := context.WithDeadline(r.Context(), x.deadline)
	defer cancel()
	rid := string(x.rid)
	tg := &target{ep: x.ep, vm: x.vm, model: x.mod.Name, ver: x.ep.Version, rid: rid,
		client: r.Context(), trusted: x.snap.trusted, peer: remoteIP(r)}
	if r.Body != nil && r.Body != http.NoBody {
		tg.body = &bodyWatch{rc: r.Body}
		r.Body = tg.body
		// A read of the client's body does not end with the model's
		// timeout; closing the body ends it, so that the upstream
		// exchange, which waits for its body writer, ends on time too.
		defer context.AfterFunc(ctx, func() { _ = tg.body.Close() })()
	}
	ctx = context.WithValue(ctx, targetKey{}, tg)
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	// The bookkeeping runs in a defer: ReverseProxy panics with
	// http.ErrAbortHandler when copying the answer fails (a client reset,
	// the deadline mid-stream, a zero-window client), and the slot, the
	// breaker's permit and the count must be given back then too.
	defer func() {
		p := recover()
		code, err := sw.code, tg.err
		// The breaker judges an answer by its status once its headers
		// were sent, as on HTTP/1.1; a cut afterwards is counted and
		// logged but not charged.
		breakerErr := err
		if p != nil && err == nil {
			err = tg.aborted(sw, ctx)
			x.vm.upstreamError(err)
		}
		if errors.Is(err, ErrClientGone) {
			code = statusClientClosed
		}
		breakerCode := code
		if x.grpc {
			// grpc-status, not the HTTP status (200 for most gRPC
			// failures), says whether the endpoint failed the call.
			x.vm.observeGRPC(sw.Header())
			if gc, ok := grpcStatusOf(sw.Header()); ok && err == nil {
				breakerCode = grpcBreakerStatus(gc, code)
			}
		}
		x.a.record(x.ep, breakerCode, breakerErr)
		x.release()
		x.finish(code, s.now())
		if err != nil {
			s.logFailure(err, x.mod.Name, x.ep.Version, x.rid)
		}
		if p != nil {
			panic(p)
		}
	}()
	s.proxy2(sw, r.WithContext(ctx), x.mod, x.ep.Version, rid, x.start) // the reverse proxy, sampled (tee2.go)
}

// clientSide is what the target knows of the client's part in the failure
// of r (the request with the model's timeout).
func (tg *target) clientSide(r *http.Request) clientSide {
	c := clientSide{gone: tg.client.Err() != nil, bodyLen: r.ContentLength, expired: r.Context().Err() != nil}
	if tg.body != nil {
		c.bodyErr, c.stalled = tg.body.state()
	}
	return c
}

// aborted classifies a stream whose answer was cut after its headers.
func (tg *target) aborted(sw *statusWriter, ctx context.Context) error {
	switch {
	case sw.writeErr != nil || tg.client.Err() != nil:
		return fmt.Errorf("%w: writing the answer", ErrClientGone)
	case ctx.Err() != nil:
		return fmt.Errorf("%w: the answer outlived the model's timeout", ErrUpstreamTimeout)
	default:
		return fmt.Errorf("%w: the answer broke off", ErrUpstream)
	}
}

// bodyWatch is a client's request body on its way upstream. It remembers
// whether reading it failed (the client's fault: a short body, a reset)
// and whether a read was waiting for the client when the exchange ended
// (a client too slow to send within the model's timeout).
type bodyWatch struct {
	rc io.ReadCloser
	// mu guards the fields below.
	mu      sync.Mutex
	reading bool
	stalled bool // a read was pending when the body was closed
	closed  bool
	eof     bool
	err     error
}

func (b *bodyWatch) Read(p []byte) (int, error) {
	b.mu.Lock()
	b.reading = true
	b.mu.Unlock()
	n, err := b.rc.Read(p)
	b.mu.Lock()
	b.reading = false
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.eof = true
	case !b.closed && b.err == nil:
		b.err = err
	}
	b.mu.Unlock()
	return n, err
}

func (b *bodyWatch) Close() error {
	b.mu.Lock()
	b.closed = true
	if b.reading {
		b.stalled = true
	}
	b.mu.Unlock()
	return b.rc.Close()
}

// state is the body's read error and whether the client stalled it.
func (b *bodyWatch) state() (error, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err, !b.eof && (b.reading || b.stalled)
}

func (s *Server) fail2(w http.ResponseWriter, r *http.Request, x *exchange, err error) {
	model, version := "", x.version()
	if x.mod != nil {
		model = x.mod.Name
	}
	if errors.Is(err, routing.ErrUnknownVersion) {
		version = r.Header.Get(HeaderVersion)
	}
	rid := string(x.rid)
	code := writeError(w, r, err, model, version, rid)
	if x.grpc {
		x.failMetrics().observeGRPC(w.Header())
	}
	x.finish(code, s.now())
	s.logFailure(err, model, version, x.rid)
}

// writeError writes vane's own error on the net/http side: JSON, or a
// gRPC status to a gRPC call (grpcerror.go). It returns the HTTP status
// the error maps to, which the metrics count either way (a gRPC client
// sees 200 on the wire, but the request failed).
func writeError(w http.ResponseWriter, r *http.Request, err error, model, version, rid string) int {
	code := statusOf(err)
	if isGRPC(r) {
		w.Header().Set(HeaderRequestID, rid)
		writeGRPCError(w, code, publicMessage(err))
		return code
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(HeaderRequestID, rid)
	if version != "" && !errors.Is(err, routing.ErrUnknownVersion) {
		h.Set(HeaderVersion, version)
	}
	if errors.Is(err, ErrOverloaded) {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(code)
	_, _ = w.Write(errorBody(err, model, version, rid))
	return code
}

// statusWriter remembers the status code for metrics. It forwards Flush
// and exposes the underlying writer for http.ResponseController, which
// gRPC trailers and streaming need.
type statusWriter struct {
	http.ResponseWriter
	code int
	// writeErr is the first error writing to the client gave.
	writeErr error
}

func (w *statusWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if err != nil && w.writeErr == nil {
		w.writeErr = err
	}
	return n, err
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// netHeaders adapts http.Header to routing.Headers.
type netHeaders http.Header

func (h netHeaders) Peek(key string) []byte { return strBytes(http.Header(h).Get(key)) }

// strBytes views s as bytes without copying; the result must not be
// modified.
func strBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// forwardH2C carries an HTTP/1.1 request to the h2c:// endpoint x
// admitted, through net/http's HTTP/2 transport, streaming the answer back.
//
// It may be the retry of an HTTP/1.1 attempt, but is not retried itself:
// the answer streams to the client as it arrives.
func (s *Server) forwardH2C(ctx *fasthttp.RequestCtx, x *exchange) {
	req := &ctx.Request
	ep := x.ep
	rctx, cancel := context.WithDeadline(context.Background(), x.deadline)
	u, err := url.ParseRequestURI(string(req.RequestURI()))
	var hr *http.Request
	if err == nil {
		u.Scheme, u.Host = "http", ep.Addr
		hr, err = http.NewRequestWithContext(rctx, string(req.Header.Method()), u.String(), bytes.NewReader(req.Body()))
	}
	if err != nil {
		cancel()
		x.settle(0, nil) // a request vane could not build says nothing of the endpoint
		x.release()
		s.fail1(ctx, x, fmt.Errorf("%w: %w", ErrBadRequest, err))
		return
	}
	hr.ContentLength = int64(len(req.Body()))
	hr.Host = string(req.Header.Host())
	for k, v := range req.Header.All() {
		hr.Header.Add(string(k), string(v))
	}
	resp, err := s.transports.h2.RoundTrip(hr)
	if err != nil {
		cancel()
		err = classify(err, clientSide{bodyLen: hr.ContentLength})
		x.settle(0, err)
		x.release()
		s.fail1(ctx, x, err)
		return
	}
	ctx.SetStatusCode(resp.StatusCode)
	for k, vs := range resp.Header {
		for _, v := range vs {
			ctx.Response.Header.Add(k, v)
		}
	}
	removeHopResponse(&ctx.Response.Header)
	ctx.Response.Header.Set(HeaderVersion, ep.Version)
	ctx.Response.Header.SetBytesV(HeaderRequestID, x.rid)
	code := resp.StatusCode
	x.settle(code, nil)
	if !req.Header.IsHTTP11() {
		// An HTTP/1.0 client cannot take a chunked answer: read it whole,
		// within the cap, and send it sized.
		max := x.mod.Config.Limits.MaxResponseBytes
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
		_ = resp.Body.Close()
		cancel()
		x.release()
		if rerr == nil && len(body) > max {
			rerr = ErrResponseTooLarge
		}
		if rerr != nil {
			rerr = classify(rerr, clientSide{bodyLen: -1})
			x.vm.upstreamError(rerr)
			s.fail1(ctx, x, rerr)
			return
		}
		ctx.SetBody(body)
		x.finish(code, s.now())
		return
	}
	vm, end := x.vm, x.detach()
	ctx.SetBodyStream(&streamBody{src: resp.Body, deadline: x.deadline, finish: func(err error) {
		cancel()
		_ = resp.Body.Close()
		if err != nil {
			vm.upstreamError(err)
		}
		end(code)
	}}, -1)
}
