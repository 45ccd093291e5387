package proxy

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/vaneproxy/vane/monitor"
	"github.com/vaneproxy/vane/proxy/h2relay"
	"github.com/vaneproxy/vane/routing"
)

// The HTTP/2 transport of the exchange: h2relay reads and writes the
// frames, relayHandler takes each stream through the exchange's steps, and
// relayStream follows it (breaker, retries, metrics, sampling) as an
// h2relay.Observer. Streams to h2c:// endpoints are relayed frame by
// frame; those to http:// endpoints go through fasthttp (relay_h1.go).

// HTTP/2 abuse limits of one client connection (h2relay enforces them).
const (
	// h2MaxStreams caps the concurrent streams of one h2c connection
	// (SETTINGS_MAX_CONCURRENT_STREAMS).
	h2MaxStreams = 100
	// A connection whose client has reset at least h2ResetMin streams, and
	// more than twice as many as it let complete, is closed: the "rapid
	// reset" attack (CVE-2023-44487).
	h2ResetMin = 100
)

// relayRetryBuffer is how much of a request body is held so that the
// request can be sent again: a unary gRPC inference request fits, and a
// larger one is relayed without retries.
const relayRetryBuffer = 256 << 10

// relayHandler is vane's h2relay.Handler.
type relayHandler struct{ s *Server }

// relayStream is one HTTP/2 stream's exchange, from Open to Done.
type relayStream struct {
	x  exchange
	id []byte // the request id's bytes (x.rid points here)
	// path and the content types, copied for the sample.
	path, reqType, respType string
	// settled is set once the breaker was told of the attempt under way;
	// refused once vane answered the stream itself.
	settled, refused bool
	// status is the HTTP status the client got; grpcCode the grpc-status
	// it ended with (-1: none).
	status, grpcCode int
	// smp is the sample being taken, nil when not sampled; reqOver and
	// respOver mark a body that outgrew max (each written by its side's
	// calls only).
	smp               *monitor.Sample
	max               int
	reqOver, respOver bool
	ttfb              time.Duration
	hdr, resp         []hpack.HeaderField // scratch for the routed headers
	// acc is the access log entry, nil when not logged; method and the
	// body sizes are for it.
	acc                *accessEntry
	method             string
	reqBytes, outBytes int64
}

var relayStreamPool = sync.Pool{New: func() any { return new(relayStream) }}

// Open takes a new stream through route, pick and admit.
func (h relayHandler) Open(req *h2relay.Request) h2relay.Route {
	s := h.s
	rs := relayStreamPool.Get().(*relayStream)
	*rs = relayStream{id: rs.id[:0], hdr: rs.hdr[:0], resp: rs.resp[:0], grpcCode: -1}
	if rid := req.Get("x-request-id"); rid != "" {
		rs.id = append(rs.id, rid...)
	} else {
		rs.id = s.ids.appendNext(rs.id)
	}
	x := &rs.x
	x.init(s, s.snap.Load(), rs.id, s.now())
	if rs.acc = s.newAccess(x.snap); rs.acc != nil {
		x.a.log = rs.acc
		rs.method = strings.Clone(req.Method)
	}
	ct := req.Get("content-type")
	x.grpc = isGRPCType(ct)
	path, _, _ := strings.Cut(req.Path, "?")
	if err := x.route(strBytes(req.Authority), routingPath(path), hpackHeaders(req.Header)); err != nil {
		return rs.refuse(err, "")
	}
	if t, ok := grpcTimeout(req.Get("grpc-timeout")); ok && x.start.Add(t).Before(x.deadline) {
		x.deadline = x.start.Add(t) // the client's own deadline is the sooner
	}
	override := req.Get("x-vane-version")
	var sticky string
	if k := x.mod.Config.Routing.StickyHeader; k != "" {
		sticky = getFold(req.Header, k)
	}
	if err := x.pick(strBytes(override), strBytes(sticky)); err != nil {
		return rs.refuse(err, override)
	}
	if ok, err := x.admit(); !ok {
		return rs.refuse(err, "")
	}
	if s.sampled(x.mod, x.rid) {
		if max := x.mod.Config.Monitor.MaxBodyBytes; req.ContentLength > int64(max) {
			s.monitor.Drop(x.mod.Name, monitor.ReasonBodyTooLarge)
		} else {
			rs.smp, rs.max = s.monitor.AcquireSample(), max
			rs.smp.Model, rs.smp.Version, rs.smp.Time = x.mod.Name, x.ep.Version, x.start
			rs.path, rs.reqType = strings.Clone(path), strings.Clone(ct)
		}
	}
	rs.hdr = relayRequestHeaders(rs.hdr, req, x)
	if !x.snap.upstreams[x.ep.ID].h2c {
		method, authority, target := strings.Clone(req.Method), strings.Clone(req.Authority), strings.Clone(req.Path)
		length := req.ContentLength
		return h2relay.Route{Deadline: x.deadline,
			Serve: func(st *h2relay.ServerStream) { s.serveRelayH1(st, rs, method, authority, target, length) }}
	}
	return h2relay.Route{
		Upstream:       s.relayPool.Upstream(x.ep.Addr),
		Header:         rs.hdr,
		ResponseHeader: rs.responseHeader(),
		Deadline:       x.deadline,
		RetryBuffer:    relayRetryBuffer,
		Observer:       rs,
	}
}

// responseHeader is what vane adds to the answer of the attempt under way.
func (rs *relayStream) responseHeader() []hpack.HeaderField {
	rs.resp = append(rs.resp[:0],
		hpack.HeaderField{Name: "x-vane-version", Value: rs.x.ep.Version},
		hpack.HeaderField{Name: "x-request-id", Value: string(rs.x.rid)})
	return rs.resp
}

// refuse answers a stream with vane's own error, before any attempt or
// when none is left, and ends the exchange.
func (rs *relayStream) refuse(err error, override string) h2relay.Route {
	resp := rs.refusal(err, override)
	rs.end()
	return h2relay.Route{Local: resp}
}

// refusal is vane's own answer to err, counted; the caller ends the
// stream's exchange.
func (rs *relayStream) refusal(err error, override string) *h2relay.Response {
	x := &rs.x
	code := statusOf(err)
	model, version := "", x.version()
	if x.mod != nil {
		model = x.mod.Name
	}
	if errors.Is(err, routing.ErrUnknownVersion) {
		version = override
	}
	resp := &h2relay.Response{Status: code, Header: []hpack.HeaderField{{Name: "x-request-id", Value: string(x.rid)}}}
	vm := x.failMetrics()
	if x.grpc {
		gc := grpcCode(code)
		resp.Status = http.StatusOK
		resp.Header = append(resp.Header,
			hpack.HeaderField{Name: "content-type", Value: "application/grpc"},
			hpack.HeaderField{Name: "grpc-status", Value: strconv.Itoa(gc)},
			hpack.HeaderField{Name: "grpc-message", Value: grpcPercentEncode(publicMessage(err))})
		vm.grpcCall(gc)
	} else {
		resp.Header = append(resp.Header, hpack.HeaderField{Name: "content-type", Value: "application/json"})
		if version != "" && !errors.Is(err, routing.ErrUnknownVersion) {
			resp.Header = append(resp.Header, hpack.HeaderField{Name: "x-vane-version", Value: version})
		}
		if errors.Is(err, ErrOverloaded) {
			resp.Header = append(resp.Header, hpack.HeaderField{Name: "retry-after", Value: "1"})
		}
		resp.Body = errorBody(err, model, version, string(x.rid))
	}
	x.finish(code, x.s.now())
	x.s.logFailure(err, model, version, x.rid)
	rs.status = resp.Status
	rs.outBytes = int64(len(resp.Body))
	return resp
}

// end gives the stream back: it writes its access log entry, releases
// its sample if still held, and itself.
func (rs *relayStream) end() {
	if e := rs.acc; e != nil {
		if e.model == "" && rs.x.mod != nil {
			e.model = rs.x.mod.Name
		}
		if e.version == "" {
			e.version = rs.x.version()
		}
		rs.x.s.writeAccess(e, string(rs.x.rid), "HTTP/2.0", rs.method, rs.status, rs.reqBytes, rs.outBytes)
	}
	if rs.smp != nil {
		rs.x.s.monitor.Release(rs.smp)
		rs.smp = nil
	}
	rs.x.end()
	relayStreamPool.Put(rs)
}

// RequestData copies the request body into the sample.
func (rs *relayStream) RequestData(p []byte) {
	if rs.smp == nil || rs.reqOver {
		return
	}
	if len(rs.smp.Input.ReqBody)+len(p) > rs.max {
		rs.reqOver = true
		return
	}
	rs.smp.AppendReq(p)
}

// ResponseHeaders settles an attempt that answered: a gRPC trailers-only
// UNAVAILABLE may be retried on another endpoint.
func (rs *relayStream) ResponseHeaders(status int, h []hpack.HeaderField, endStream, retryable bool) *h2relay.Attempt {
	x := &rs.x
	rs.status = status
	if endStream && x.grpc {
		if gc, ok := grpcStatusField(h); ok {
			code := grpcBreakerStatus(gc, status)
			rs.settle(code, nil)
			if retryable && x.retry(code, nil) {
				if a := rs.next(); a != nil {
					return a
				}
			}
			rs.grpcCode = gc
		}
	}
	if !x.grpc {
		// As on HTTP/1.1: the configured statuses are retried while the
		// request is held.
		rs.settle(status, nil)
		if retryable && x.retry(status, nil) {
			if a := rs.next(); a != nil {
				return a
			}
		}
	}
	rs.ttfb = x.s.now().Sub(x.start)
	if rs.smp != nil {
		rs.respType = getFold(h, "content-type")
	}
	return nil
}

// settle tells the breaker how the attempt went, once.
func (rs *relayStream) settle(status int, err error) {
	if !rs.settled {
		rs.settled = true
		rs.x.settle(status, err)
	}
}

// next releases the failed attempt's endpoint and admits another; nil
// when none admits it (the caller answers with what it has).
func (rs *relayStream) next() *h2relay.Attempt {
	x := &rs.x
	x.release()
	ok, _ := x.admit()
	if !ok || !x.snap.upstreams[x.ep.ID].h2c {
		if ok { // an http:// endpoint cannot take a relayed stream
			x.settle(0, nil)
			x.release()
		}
		x.ep = nil // nothing held: Done must not release again
		return nil
	}
	rs.settled = false
	if rs.smp != nil {
		rs.smp.Version = x.ep.Version
	}
	return &h2relay.Attempt{Upstream: x.s.relayPool.Upstream(x.ep.Addr), ResponseHeader: rs.responseHeader()}
}

// ResponseData copies the answer into the sample.
func (rs *relayStream) ResponseData(p []byte) {
	if rs.smp == nil || rs.respOver {
		return
	}
	if len(rs.smp.Input.RespBody)+len(p) > rs.max {
		rs.respOver = true
		return
	}
	rs.smp.AppendResp(p)
}

// Trailers settle a gRPC call by its grpc-status.
func (rs *relayStream) Trailers(h []hpack.HeaderField) {
	if !rs.x.grpc {
		return
	}
	if gc, ok := grpcStatusField(h); ok {
		rs.grpcCode = gc
		rs.settle(grpcBreakerStatus(gc, rs.status), nil)
	}
}

// Failed decides what follows an attempt that failed before its answer
// reached the client: a retry, or vane's own answer.
func (rs *relayStream) Failed(err error, retryable bool) (*h2relay.Attempt, *h2relay.Response) {
	x := &rs.x
	err = relayError(err)
	if x.ep != nil {
		rs.settle(0, err)
		if retryable && x.retry(0, err) {
			if a := rs.next(); a != nil {
				return a, nil
			}
		} else {
			x.release()
			x.ep = nil
		}
	}
	resp := rs.refusal(err, "")
	rs.refused = true
	return nil, resp
}

// Done ends the stream's exchange.
func (rs *relayStream) Done(o h2relay.Outcome) {
	x := &rs.x
	s := x.s
	rs.reqBytes, rs.outBytes = o.ReqBytes, o.RespBytes
	var err error
	if o.Err != nil && !rs.refused {
		err = relayError(o.Err)
	}
	if x.ep != nil {
		if !rs.settled {
			// An answer cut before its end (or a gRPC call without a
			// grpc-status) says the attempt failed, unless the client
			// left.
			if err == nil && x.grpc {
				err = ErrUpstream
			}
			rs.settle(rs.status, err)
		} else if err != nil {
			x.vm.upstreamError(err)
		}
		x.release()
	}
	if !rs.refused {
		code := rs.status
		if errors.Is(err, ErrClientGone) {
			code = statusClientClosed
		}
		if x.grpc {
			x.vm.grpcCall(rs.grpcCode)
		}
		now := s.now()
		x.finish(code, now)
		if err != nil {
			s.logFailure(err, x.mod.Name, x.version(), x.rid)
		}
		rs.offer(o, err, now)
	}
	rs.end()
}

// offer hands the sample to the monitor, or drops it saying why.
func (rs *relayStream) offer(o h2relay.Outcome, err error, now time.Time) {
	smp := rs.smp
	if smp == nil {
		return
	}
	m := rs.x.s.monitor
	switch {
	case rs.reqOver || rs.respOver:
		m.Drop(rs.x.mod.Name, monitor.ReasonBodyTooLarge)
		return
	case err != nil || o.Err != nil:
		m.Drop(rs.x.mod.Name, monitor.ReasonStreamAborted)
		return
	}
	rs.smp = nil
	smp.SetMeta(rs.x.rid, strBytes(rs.path), strBytes(rs.reqType), strBytes(rs.respType))
	smp.Input.Status = rs.status
	smp.Input.Latency = now.Sub(rs.x.start)
	smp.Input.TTFB = rs.ttfb
	m.Offer(smp)
}
