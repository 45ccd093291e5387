package proxy

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
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

// serveHTTP1 is the fasthttp handler: the HTTP/1.1 request path.
func (s *Server) serveHTTP1(ctx *fasthttp.RequestCtx) {
	defer s.access1(ctx)() // accesslog.go
	snap := s.snap.Load()
	req := &ctx.Request
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)

	rid := req.Header.PeekCanonical(keyRequestID)
	if len(rid) == 0 {
		sc.id = s.ids.appendNext(sc.id[:0])
		req.Header.SetCanonical(keyRequestID, sc.id)
		rid = sc.id
	}

	if ambiguousFraming(&req.Header) {
		ctx.SetConnectionClose()
		s.writeBy(ctx, ctx.Time().Add(clientTimeout))
		s.fail1(ctx, snap.unmatched, ErrAmbiguousFraming, "", "", rid)
		return
	}
	originForm(req)
	mod := snap.table.Match(ctx.Host(), ctx.Path(), &req.Header)
	if mod == nil {
		s.writeBy(ctx, ctx.Time().Add(clientTimeout))
		s.fail1(ctx, snap.unmatched, ErrNoRoute, "", "", rid)
		return
	}
	// The model's timeout bounds the answer's writing too: a client that
	// does not read gives its slot back at the deadline (plus a grace for
	// vane's own 504).
	s.writeBy(ctx, ctx.Time().Add(mod.Config.Timeout+writeGrace))
	if len(req.Header.Host()) == 0 { // HTTP/1.0 may omit it; the upstream request needs one
		req.Header.Set("Host", ctx.LocalAddr().String())
	}
	override := req.Header.PeekCanonical(keyVersion)
	var sticky []byte
	if k := snap.stickyKeys[mod.Index]; k != nil {
		sticky = req.Header.PeekCanonical(k)
	}
	v, err := mod.Pick(override, sticky)
	if err != nil {
		ver := ""
		if len(override) > 0 {
			ver = string(override)
		}
		s.fail1(ctx, snap.noVersion[mod.Index], err, mod.Name, ver, rid)
		return
	}
	if len(override) > 0 {
		req.Header.Del(HeaderVersion)
	}
	removeHopRequest(&req.Header)
	sc.fwd = forwarded1(req, snap.trusted, clientIP(ctx), sc.fwd)
	s.forward1(ctx, snap, mod, v, len(override) > 0, rid)
}

// forward1 sends the request to an endpoint of v and, within the retry
// policy and budget, to other endpoints (or versions) when an attempt
// fails before any byte of the answer reached the client.
func (s *Server) forward1(ctx *fasthttp.RequestCtx, snap *snapshot, mod *routing.Model, v *routing.Version, pinned bool, rid []byte) {
	pol := snap.policies[mod.Index]
	pol.budget.RecordExecution()
	defer pol.budget.ReleaseExecution()
	deadline := ctx.Time().Add(mod.Config.Timeout)
	// HTTP/1.0 clients cannot take a chunked answer: theirs is read whole.
	stream := mayStream(mod.Config.Protocol, &ctx.Request) && ctx.Request.Header.IsHTTP11()
	maxResp := mod.Config.Limits.MaxResponseBytes

	a := attempt{snap: snap, mod: mod, v: v, pinned: pinned, log: s.accessOf1(ctx, snap)}
	var versionsTried uint64
	permits := 0
	defer func() {
		for range permits {
			pol.budget.ReleasePermit()
		}
	}()
	var (
		resp    *fasthttp.Response // the streamed answer being considered
		lastErr error
		lastEP  *routing.Endpoint // the last attempt's endpoint
		lastVM  *versionMetrics   // and its version's metrics
		status  int
	)
	first := a.v.PickEndpoint(rand.Uint64())
	for try := 1; ; {
		versionsTried |= 1 << (uint(a.v.Index) & 63)
		ep, aerr := a.acquire(first)
		first = nil
		if aerr != nil {
			if nv := a.nextVersion(pol); nv != nil && versionsTried&(1<<(uint(nv.Index)&63)) == 0 {
				a.v = nv
				first = nv.PickEndpoint(rand.Uint64())
				continue
			}
			if lastEP == nil { // nothing was tried: vane's own answer
				s.fail1(ctx, snap.metrics[mod.Index][a.v.Index], aerr, mod.Name, a.v.Name, rid)
				return
			}
			break // answer with the last attempt's outcome
		}
		if resp != nil { // a streamed answer that is being retried
			_ = resp.CloseBodyStream()
			fasthttp.ReleaseResponse(resp)
			resp = nil
			snap.done(lastEP)
		}
		if snap.upstreams[ep.ID].h2c {
			if lastEP != nil {
				ctx.Response.Reset() // the failed attempt's answer
			}
			s.forwardH2C(ctx, &a, ep, snap.metrics[mod.Index][a.v.Index], deadline, rid)
			return
		}
		lastEP, lastVM = ep, snap.metrics[mod.Index][a.v.Index]
		ep.Begin()
		if stream {
			resp = fasthttp.AcquireResponse()
			resp.StreamBody = true
			lastErr = snap.upstreams[ep.ID].hc.DoDeadline(&ctx.Request, resp, deadline)
		} else {
			lastErr = snap.upstreams[ep.ID].hc.DoDeadline(&ctx.Request, &ctx.Response, deadline)
		}
		status = 0
		if lastErr == nil && stream && tooLarge(&resp.Header, maxResp) {
			// A sized answer is read whole before it is sent: over the
			// cap it is refused before a byte of it is read.
			_ = resp.CloseBodyStream()
			lastErr = ErrResponseTooLarge
		}
		if lastErr == nil {
			if stream {
				status = resp.StatusCode()
			} else {
				status = ctx.Response.StatusCode()
			}
		}
		lastErr = classify(lastErr, clientSide{bodyLen: int64(len(ctx.Request.Body()))})
		a.record(ep, status, lastErr)
		if lastErr != nil && resp != nil {
			fasthttp.ReleaseResponse(resp)
			resp = nil
		}
		if resp == nil {
			snap.done(ep) // a streamed answer's endpoint is released when it ends
		}
		if lastErr != nil {
			lastVM.upstreamError(lastErr)
		}
		if try >= pol.attempts || !pol.retryable(status, lastErr) || !time.Now().Before(deadline) {
			break
		}
		if !pol.budget.TryAcquirePermit() {
			lastVM.budgetExceeded.Inc()
			break
		}
		permits++
		try++
		lastVM.retries.Inc()
		first = a.v.PickEndpoint(rand.Uint64())
	}

	// The answer is the last attempt's, counted under its version (a.v
	// may have moved on to a version that then admitted nothing).
	vm := lastVM
	if lastErr != nil {
		s.upstreamFailed1(ctx, vm, lastErr, mod.Name, lastEP.Version, rid)
		return
	}
	if stream {
		s.respondStream(ctx, snap, mod, resp, lastEP, vm, deadline, rid)
		return
	}
	removeHopResponse(&ctx.Response.Header)
	if status >= 500 && len(ctx.Response.Body()) == 0 {
		// An upstream failure without a body still reaches the client as
		// a JSON error naming the model and version, never empty.
		ctx.SetContentType("application/json")
		ctx.SetBody(errorBody(upstreamStatus(status), mod.Name, lastEP.Version, string(rid)))
	}
	ctx.Response.Header.SetCanonical(keyVersion, []byte(lastEP.Version))
	ctx.Response.Header.SetCanonical(keyRequestID, rid)
	now := s.now()
	vm.observe(status, now.Sub(ctx.Time()))
	if s.sampled(mod, rid) {
		s.sample1(ctx, mod, lastEP.Version, rid, status, now)
	}
	s.shadow1(ctx, snap, mod, lastEP.Version, rid, status, now)
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

// upstreamFailed1 answers a failed exchange; the caller has counted it in
// vane_upstream_errors_total already (once per failed attempt).
func (s *Server) upstreamFailed1(ctx *fasthttp.RequestCtx, vm *versionMetrics, err error, model, version string, rid []byte) {
	s.fail1(ctx, vm, classify(err, clientSide{bodyLen: int64(len(ctx.Request.Body()))}), model, version, rid)
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
// becomes a well-formed 502 rather than a truncated answer. ep's in-flight
// count is released when the body is done.
func (s *Server) respondStream(ctx *fasthttp.RequestCtx, snap *snapshot, mod *routing.Model, resp *fasthttp.Response, ep *routing.Endpoint, vm *versionMetrics, deadline time.Time, rid []byte) {
	removeHopResponse(&resp.Header)
	resp.Header.CopyTo(&ctx.Response.Header)
	ctx.Response.Header.SetCanonical(keyVersion, []byte(ep.Version))
	ctx.Response.Header.SetCanonical(keyRequestID, rid)
	code := resp.StatusCode()
	start := ctx.Time()

	body := resp.BodyStream()
	if body == nil || (resp.Header.ContentLength() >= 0 && !isEventStream(resp.Header.ContentType())) {
		var err error
		if body != nil {
			bp := streamBufPool.Get().(*[]byte)
			_, err = io.CopyBuffer(ctx.Response.BodyWriter(), onlyReader{body}, *bp)
			streamBufPool.Put(bp)
		}
		release1(snap, ep, resp)
		if err != nil {
			ctx.Response.Reset()
			err = classify(err, clientSide{bodyLen: -1})
			vm.upstreamError(err)
			s.upstreamFailed1(ctx, vm, err, ep.Model, ep.Version, rid) // counts the 502
			return
		}
		now := s.now()
		vm.observe(code, now.Sub(start))
		if s.sampled(mod, rid) {
			s.sample1(ctx, mod, ep.Version, rid, code, now)
		}
		s.shadow1(ctx, snap, mod, ep.Version, rid, code, now)
		return
	}
	var tee *streamTee
	if s.sampled(mod, rid) {
		tee = s.newStreamTee(ctx, mod, ep.Version, rid, code, &resp.Header)
	}
	ctx.SetBodyStream(&streamBody{src: body, deadline: deadline, tee: tee, finish: func(err error) {
		if err != nil {
			vm.upstreamError(err)
		}
		tee.finish(start, err)
		s.done1(snap, ep, vm, code, start, resp)
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

// release1 gives back the endpoint and the streamed answer of an exchange
// that is over.
func release1(snap *snapshot, ep *routing.Endpoint, resp *fasthttp.Response) {
	snap.done(ep)
	_ = resp.CloseBodyStream()
	fasthttp.ReleaseResponse(resp)
}

// done1 finishes the accounting of a forwarded request.
func (s *Server) done1(snap *snapshot, ep *routing.Endpoint, vm *versionMetrics, code int, start time.Time, resp *fasthttp.Response) {
	release1(snap, ep, resp)
	vm.observe(code, s.now().Sub(start))
}

// onlyReader hides WriterTo so io.CopyBuffer uses the pooled buffer.
type onlyReader struct{ io.Reader }

func isEventStream(ct []byte) bool {
	const es = "text/event-stream"
	return len(ct) >= len(es) && string(ct[:len(es)]) == es
}

// fail1 answers with vane's own JSON error.
func (s *Server) fail1(ctx *fasthttp.RequestCtx, vm *versionMetrics, err error, model, version string, rid []byte) {
	code := statusOf(err)
	ctx.Response.Reset()
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	ctx.Response.Header.SetCanonical(keyRequestID, rid)
	if version != "" && !errors.Is(err, routing.ErrUnknownVersion) {
		ctx.Response.Header.Set(HeaderVersion, version)
	}
	if errors.Is(err, ErrOverloaded) {
		ctx.Response.Header.Set("Retry-After", "1")
	}
	ctx.SetBody(errorBody(err, model, version, string(rid)))
	vm.observe(code, s.now().Sub(ctx.Time()))
	s.logFailure(err, model, version, rid)
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
