package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/routing"
)

// scratch holds per-request buffers, pooled so the request path does not
// allocate them.
type scratch struct {
	id  []byte
	fwd []byte
}

var scratchPool = sync.Pool{New: func() any { return &scratch{id: make([]byte, 0, 32), fwd: make([]byte, 0, 64)} }}

// streamBufPool holds the copy buffers of streamed responses.
var streamBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// exchangePool recycles exchanges: the streamed answers' closures and the
// access log keep pointers to them, so they live on the heap.
var exchangePool = sync.Pool{New: func() any { return new(exchange) }}

// serveHTTP1 is the fasthttp handler: the HTTP/1.1 request path. It reads
// the request's routing inputs, takes the exchange's steps and writes the
// answer.
func (s *Server) serveHTTP1(ctx *fasthttp.RequestCtx) {
	defer s.access1(ctx)() // accesslog.go
	req := &ctx.Request
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	rid := req.Header.PeekCanonical(keyRequestID)
	if len(rid) == 0 {
		sc.id = s.ids.appendNext(sc.id[:0])
		req.Header.SetCanonical(keyRequestID, sc.id)
		rid = sc.id
	}
	x := exchangePool.Get().(*exchange)
	defer exchangePool.Put(x)
	snap := s.snap.Load()
	x.init(s, snap, rid, ctx.Time())
	x.a.log = s.accessOf1(ctx, snap)

	if ambiguousFraming(&req.Header) {
		ctx.SetConnectionClose()
		s.writeBy(ctx, ctx.Time().Add(clientTimeout))
		s.fail1(ctx, x, ErrAmbiguousFraming)
		return
	}
	originForm(req)
	if err := x.route(ctx.Host(), ctx.Path(), &req.Header); err != nil {
		s.writeBy(ctx, ctx.Time().Add(clientTimeout))
		s.fail1(ctx, x, err)
		return
	}
	// The model's timeout bounds the answer's writing too: a client that
	// does not read gives its slot back at the deadline (plus a grace for
	// vane's own 504).
	s.writeBy(ctx, x.deadline.Add(writeGrace))
	if len(req.Header.Host()) == 0 { // HTTP/1.0 may omit it; the upstream request needs one
		req.Header.Set("Host", ctx.LocalAddr().String())
	}
	override := req.Header.PeekCanonical(keyVersion)
	var sticky []byte
	if k := snap.stickyKeys[x.mod.Index]; k != nil {
		sticky = req.Header.PeekCanonical(k)
	}
	if err := x.pick(override, sticky); err != nil {
		s.fail1(ctx, x, err)
		return
	}
	if len(override) > 0 {
		req.Header.Del(HeaderVersion)
	}
	removeHopRequest(&req.Header)
	sc.fwd = forwarded1(req, snap.trusted, clientIP(ctx), sc.fwd)
	s.relay1(ctx, x)
}

// relay1 runs the exchange's attempts over HTTP/1.1 (or h2c, for h2c://
// endpoints) until one answers or none is left, and answers with the last.
func (s *Server) relay1(ctx *fasthttp.RequestCtx, x *exchange) {
	// HTTP/1.0 clients cannot take a chunked answer: theirs is read whole.
	stream := mayStream(x.mod.Config.Protocol, &ctx.Request) && ctx.Request.Header.IsHTTP11()
	var (
		resp   *fasthttp.Response // a streamed answer, kept until a retry is admitted
		status int
		err    error
	)
	for {
		prev := x.ep
		ok, why := x.admit()
		if !ok {
			if why != nil { // nothing was tried: vane's own answer
				s.fail1(ctx, x, why)
				return
			}
			break // answer with the last attempt's outcome
		}
		if resp != nil { // the failed attempt's streamed answer, and its endpoint
			releaseStream(resp)
			resp = nil
			x.snap.done(prev)
		}
		if x.snap.upstreams[x.ep.ID].h2c {
			ctx.Response.Reset() // any failed attempt's answer
			s.forwardH2C(ctx, x)
			return
		}
		status, resp, err = s.send1(ctx, x, stream)
		x.settle(status, err)
		if resp == nil || err != nil {
			x.release() // a streamed answer's endpoint is released when it ends
		}
		if !x.retry(status, err) {
			break
		}
	}
	switch {
	case err != nil:
		if resp != nil {
			fasthttp.ReleaseResponse(resp)
		}
		s.fail1(ctx, x, err)
	case resp != nil:
		s.respondStream(ctx, x, resp)
	default:
		s.respond1(ctx, x, status)
	}
}

// send1 sends the attempt x admitted and reads its answer: whole into
// ctx.Response, or (stream) its head into a new streamed Response whose
// body is still to be read. The error is classified.
func (s *Server) send1(ctx *fasthttp.RequestCtx, x *exchange, stream bool) (int, *fasthttp.Response, error) {
	hc := x.snap.upstreams[x.ep.ID].hc
	if !stream {
		err := hc.DoDeadline(&ctx.Request, &ctx.Response, x.deadline)
		if err != nil {
			return 0, nil, classify(err, clientSide{bodyLen: int64(len(ctx.Request.Body()))})
		}
		return ctx.Response.StatusCode(), nil, nil
	}
	resp := fasthttp.AcquireResponse()
	resp.StreamBody = true
	err := hc.DoDeadline(&ctx.Request, resp, x.deadline)
	if err == nil && tooLarge(&resp.Header, x.mod.Config.Limits.MaxResponseBytes) {
		// A sized answer is read whole before it is sent: over the cap
		// it is refused before a byte of it is read.
		err = ErrResponseTooLarge
	}
	if err != nil {
		_ = resp.CloseBodyStream()
		fasthttp.ReleaseResponse(resp)
		return 0, nil, classify(err, clientSide{bodyLen: int64(len(ctx.Request.Body()))})
	}
	return resp.StatusCode(), resp, nil
}

// respond1 sends an answer read whole, and hands the exchange to the
// monitor and the shadows.
func (s *Server) respond1(ctx *fasthttp.RequestCtx, x *exchange, status int) {
	removeHopResponse(&ctx.Response.Header)
	if status >= 500 && len(ctx.Response.Body()) == 0 {
		// An upstream failure without a body still reaches the client as
		// a JSON error naming the model and version, never empty.
		ctx.SetContentType("application/json")
		ctx.SetBody(errorBody(upstreamStatus(status), x.mod.Name, x.ep.Version, string(x.rid)))
	}
	ctx.Response.Header.SetCanonical(keyVersion, []byte(x.ep.Version))
	ctx.Response.Header.SetCanonical(keyRequestID, x.rid)
	now := s.now()
	x.finish(status, now)
	s.handOn1(ctx, x, status, now)
}

// handOn1 gives a whole exchange to the monitor (when sampled) and the
// shadows.
func (s *Server) handOn1(ctx *fasthttp.RequestCtx, x *exchange, status int, now time.Time) {
	if s.sampled(x.mod, x.rid) {
		s.sample1(ctx, x.mod, x.ep.Version, x.rid, status, now)
	}
	s.shadow1(ctx, x.snap, x.mod, x.ep.Version, x.rid, status, now)
}

// mayStream reports whether the answer may be a stream that must reach the
// client as it is produced. Protocols whose answers are single JSON
// documents (KServe, TF Serving, MLflow) are read whole; OpenAI-style and
// unknown (raw) protocols, and any request that accepts
// text/event-stream, are streamed.
func mayStream(p configs.Protocol, req *fasthttp.Request) bool {
	switch p {
	case configs.ProtocolKServeV1, configs.ProtocolKServeV2, configs.ProtocolTFServing, configs.ProtocolMLflow:
		return bytes.Contains(req.Header.PeekCanonical(keyAccept), []byte("text/event-stream"))
	default:
		return true
	}
}

// tooLarge reports a sized, non-event-stream answer over max bytes.
func tooLarge(h *fasthttp.ResponseHeader, max int) bool {
	return h.ContentLength() > max && !isEventStream(h.ContentType())
}

// writeGrace is how long after a request's deadline its answer may still be
// written: long enough for vane's own 504, short against a client that
// does not read.
const writeGrace = time.Second

// writeBy bounds the writes of the answer on the client's connection.
// fasthttp sets no write deadline of its own (Server.WriteTimeout is 0).
func (s *Server) writeBy(ctx *fasthttp.RequestCtx, t time.Time) {
	_ = ctx.Conn().SetWriteDeadline(t)
}

// originForm turns an absolute-form request target (RFC 9112 §3.2.2) into
// origin-form, its authority becoming the Host: the upstream gets the
// request it would have got from a client that sent origin-form, whatever
// scheme the client named.
func originForm(req *fasthttp.Request) {
	uri := req.Header.RequestURI()
	if len(uri) == 0 || uri[0] == '/' || (len(uri) == 1 && uri[0] == '*') {
		return
	}
	u := req.URI()
	host := append([]byte(nil), u.Host()...)
	target := append([]byte(nil), u.RequestURI()...)
	req.Header.SetHostBytes(host)
	req.SetRequestURIBytes(target)
}

// respondStream sends an answer whose body is a stream: streams (SSE,
// chunked bodies of unknown length) flow to the client chunk by chunk;
// sized bodies are read whole first, so an upstream failure half-way still
// becomes a well-formed 502 rather than a truncated answer. The
// endpoint is released when the body is done.
func (s *Server) respondStream(ctx *fasthttp.RequestCtx, x *exchange, resp *fasthttp.Response) {
	removeHopResponse(&resp.Header)
	resp.Header.CopyTo(&ctx.Response.Header)
	ctx.Response.Header.SetCanonical(keyVersion, []byte(x.ep.Version))
	ctx.Response.Header.SetCanonical(keyRequestID, x.rid)
	code := resp.StatusCode()

	body := resp.BodyStream()
	if body == nil || (resp.Header.ContentLength() >= 0 && !isEventStream(resp.Header.ContentType())) {
		var err error
		if body != nil {
			bp := streamBufPool.Get().(*[]byte)
			_, err = io.CopyBuffer(ctx.Response.BodyWriter(), onlyReader{body}, *bp)
			streamBufPool.Put(bp)
		}
		x.release()
		releaseStream(resp)
		if err != nil {
			ctx.Response.Reset()
			err = classify(err, clientSide{bodyLen: -1})
			x.vm.upstreamError(err)
			s.fail1(ctx, x, err) // counts the 502
			return
		}
		now := s.now()
		x.finish(code, now)
		s.handOn1(ctx, x, code, now)
		return
	}
	var tee *streamTee
	if s.sampled(x.mod, x.rid) {
		tee = s.newStreamTee(ctx, x.mod, x.ep.Version, x.rid, code, &resp.Header)
	}
	start, vm, end := x.start, x.vm, x.detach()
	ctx.SetBodyStream(&streamBody{src: body, deadline: x.deadline, tee: tee, finish: func(err error) {
		if err != nil {
			vm.upstreamError(err)
		}
		tee.finish(start, err)
		releaseStream(resp)
		end(code)
	}}, -1)
}

// streamBody is a streamed answer on its way to the client. fasthttp writes
// each Read as one chunk and flushes it, so events reach the client as the
// upstream sends them. An upstream failure (or the model's deadline) is
// returned from Read: fasthttp then leaves the chunked body unterminated
// and closes the connection, so the client sees a broken answer, never a
// complete-looking truncated one. finish runs once, from Close, which
// fasthttp calls when it is done with the body, however that ended.
type streamBody struct {
	src      io.Reader
	deadline time.Time
	tee      *streamTee
	err      error
	finish   func(err error)
	closed   bool
}

func (b *streamBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if !time.Now().Before(b.deadline) {
		b.err = ErrUpstreamTimeout
		return 0, b.err
	}
	n, err := b.src.Read(p)
	if n > 0 {
		b.tee.write(p[:n])
	}
	if err != nil && !errors.Is(err, io.EOF) {
		b.err = err
	}
	return n, err
}

func (b *streamBody) Close() error {
	if !b.closed {
		b.closed = true
		b.finish(b.err)
	}
	return nil
}

// releaseStream gives back a streamed answer that is over.
func releaseStream(resp *fasthttp.Response) {
	_ = resp.CloseBodyStream()
	fasthttp.ReleaseResponse(resp)
}

// onlyReader hides WriterTo so io.CopyBuffer uses the pooled buffer.
type onlyReader struct{ io.Reader }

func isEventStream(ct []byte) bool {
	const es = "text/event-stream"
	return len(ct) >= len(es) && string(ct[:len(es)]) == es
}

// fail1 answers with vane's own JSON error, and ends the exchange.
func (s *Server) fail1(ctx *fasthttp.RequestCtx, x *exchange, err error) {
	code := statusOf(err)
	model, version := "", x.version()
	if x.mod != nil {
		model = x.mod.Name
	}
	if errors.Is(err, routing.ErrUnknownVersion) {
		version = string(ctx.Request.Header.PeekCanonical(keyVersion))
	}
	ctx.Response.Reset()
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	ctx.Response.Header.SetCanonical(keyRequestID, x.rid)
	if version != "" && !errors.Is(err, routing.ErrUnknownVersion) {
		ctx.Response.Header.Set(HeaderVersion, version)
	}
	if errors.Is(err, ErrOverloaded) {
		ctx.Response.Header.Set("Retry-After", "1")
	}
	ctx.SetBody(errorBody(err, model, version, string(x.rid)))
	x.finish(code, s.now())
	s.logFailure(err, model, version, x.rid)
}

// serveHTTP1Error answers requests that fasthttp could not parse.
func (s *Server) serveHTTP1Error(ctx *fasthttp.RequestCtx, err error) {
	code := fasthttp.StatusBadRequest
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		code = fasthttp.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		code = fasthttp.StatusRequestEntityTooLarge
	case isTimeout(err):
		code = fasthttp.StatusRequestTimeout
	}
	ctx.Response.Reset()
	s.writeBy(ctx, time.Now().Add(clientTimeout))
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	switch code {
	case fasthttp.StatusRequestHeaderFieldsTooLarge:
		ctx.SetBodyString(`{"error":"request headers too large"}`)
	case fasthttp.StatusRequestEntityTooLarge:
		ctx.SetBodyString(`{"error":"request body too large"}`)
	default:
		ctx.SetBodyString(`{"error":"malformed request"}`)
	}
}

// ambiguousFraming reports a request that carries both Transfer-Encoding
// and Content-Length (RFC 9112 §6.3: a smuggling attempt or a broken
// client). fasthttp lets Transfer-Encoding win and marks the connection to
// close; vane refuses the request outright. Only requests marked to close
// pay for the scan of the raw headers.
func ambiguousFraming(h *fasthttp.RequestHeader) bool {
	if !h.ConnectionClose() {
		return false
	}
	var cl, te bool
	raw := h.RawHeaders()
	for len(raw) > 0 {
		var line []byte
		line, raw, _ = bytes.Cut(raw, newline)
		cl = cl || hasFieldName(line, "content-length:")
		te = te || hasFieldName(line, "transfer-encoding:")
	}
	return cl && te
}

func hasFieldName(line []byte, name string) bool {
	return len(line) >= len(name) && bytes.EqualFold(line[:len(name)], []byte(name))
}

// clientIP returns the client's IP, or the zero Addr when not on TCP.
func clientIP(ctx *fasthttp.RequestCtx) netip.Addr {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
