package proxy

import (
	"encoding/binary"
	"hash/maphash"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaneproxy/vane/monitor"
	"github.com/vaneproxy/vane/routing"
)

// The sampling tee: a bounded copy of a request and its answer goes to the
// drift monitor's queue. It never blocks and never changes what the client
// gets: a body over monitor.max_body_bytes, a full queue or a broken stream
// only drops the sample and counts why.

const headerInferenceLen = "Inference-Header-Content-Length"

// sampled decides once per request, from its id, whether it is sampled.
// The id is hashed with a per-process secret first (maphash's random
// seed): a client choosing its X-Request-Id cannot choose, or dodge,
// sampling, while an id's answer stays the same within the process.
func (s *Server) sampled(mod *routing.Model, rid []byte) bool {
	return s.drawn(mod.Config.Monitor.SampleRate, rid)
}

// drawn is true for a share rate of request ids, decided by the keyed hash
// of the id (sampling for the monitor, copies to shadows).
func (s *Server) drawn(rate float64, rid []byte) bool {
	if !(rate > 0) {
		return false
	}
	if rate >= 1 {
		return true // no hash to compute
	}
	var key [8]byte
	binary.LittleEndian.PutUint64(key[:], maphash.Bytes(s.sampleSeed, rid))
	return monitor.ShouldSample(rate, key[:])
}

// sample1 hands a whole HTTP/1.1 exchange, its answer in ctx.Response
// and received at now, to the monitor.
func (s *Server) sample1(ctx *fasthttp.RequestCtx, mod *routing.Model, version string, rid []byte, status int, now time.Time) {
	max := mod.Config.Monitor.MaxBodyBytes
	reqBody, respBody := ctx.Request.Body(), ctx.Response.Body()
	if len(reqBody) > max || len(respBody) > max {
		s.monitor.Drop(mod.Name, monitor.ReasonBodyTooLarge)
		return
	}
	smp := s.monitor.AcquireSample()
	fillSample(smp, ctx, mod, version, rid, status, &ctx.Response.Header, now)
	smp.AppendReq(reqBody)
	smp.AppendResp(respBody)
	s.monitor.Offer(smp)
}

// fillSample sets everything but the response body.
func fillSample(smp *monitor.Sample, ctx *fasthttp.RequestCtx, mod *routing.Model, version string, rid []byte, status int, rh *fasthttp.ResponseHeader, now time.Time) {
	smp.Model, smp.Version = mod.Name, version
	smp.Time = ctx.Time()
	smp.SetMeta(rid, ctx.Path(), ctx.Request.Header.ContentType(), rh.ContentType())
	smp.Input.Status = status
	// The answer's headers have arrived: for a stream that is its first
	// byte; finish sets the latency of the whole stream.
	smp.Input.Latency = now.Sub(ctx.Time())
	smp.Input.TTFB = smp.Input.Latency
	smp.Input.InferenceHeaderLen = headerInt(ctx.Request.Header.PeekCanonical(keyInferenceLen))
	smp.Input.RespInferenceHeaderLen = headerInt(rh.PeekCanonical(keyInferenceLen))
}

// headerInt parses a non-negative decimal header value; -1 when absent or
// malformed.
func headerInt(v []byte) int {
	if len(v) == 0 {
		return -1
	}
	n, err := fasthttp.ParseUint(v)
	if err != nil {
		return -1
	}
	return n
}

// streamTee collects a streamed answer for the monitor while it flows to
// the client unchanged.
type streamTee struct {
	s    *Server
	smp  *monitor.Sample
	mod  string
	max  int
	over bool
}

// newStreamTee starts the sample of a streamed exchange, or returns nil
// when the request is not sampled or its body is too large.
func (s *Server) newStreamTee(ctx *fasthttp.RequestCtx, mod *routing.Model, version string, rid []byte, status int, rh *fasthttp.ResponseHeader) *streamTee {
	max := mod.Config.Monitor.MaxBodyBytes
	if len(ctx.Request.Body()) > max {
		s.monitor.Drop(mod.Name, monitor.ReasonBodyTooLarge)
		return nil
	}
	smp := s.monitor.AcquireSample()
	fillSample(smp, ctx, mod, version, rid, status, rh, s.now())
	smp.AppendReq(ctx.Request.Body())
	return &streamTee{s: s, smp: smp, mod: mod.Name, max: max}
}

// write copies a chunk the client is being sent.
func (t *streamTee) write(p []byte) {
	if t == nil || t.over {
		return
	}
	if len(t.smp.Input.RespBody)+len(p) > t.max {
		t.over = true
		return
	}
	t.smp.AppendResp(p)
}

// finish offers the sample, or drops it when the stream broke or grew too
// large.
func (t *streamTee) finish(start time.Time, err error) {
	if t == nil {
		return
	}
	switch {
	case t.over:
		t.s.monitor.Drop(t.mod, monitor.ReasonBodyTooLarge)
		t.s.monitor.Release(t.smp)
	case err != nil:
		t.s.monitor.Drop(t.mod, monitor.ReasonStreamAborted)
		t.s.monitor.Release(t.smp)
	default:
		t.smp.Input.Latency = t.s.now().Sub(start)
		t.s.monitor.Offer(t.smp)
	}
}
