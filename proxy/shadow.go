package proxy

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/judge"
	"github.com/vaneproxy/vane/monitor/decode"
	"github.com/vaneproxy/vane/routing"
)

// Shadowing: after the primary has answered a request (its answer is in
// ctx.Response, about to be written to the client), a copy of the request
// and of the primary's answer goes to a bounded queue, one per shadow
// version of the model. A fixed pool of workers (shadowing.concurrency)
// sends each copy to its shadow with the model's shadow_timeout, decodes
// both answers with the drift monitor's decoder, and hands the pair to
// judge. The client's path only copies bytes and never waits: a full
// queue drops the copy and counts it. Shadows are HTTP/1.1 only; streamed
// answers (SSE, chunked streams of unknown length) are not shadowed.

// MaxShadowQueueBytes bounds the request and answer bytes of the copies
// waiting in the shadow queue, whatever shadowing.queue_size allows; a
// copy that would go over it is dropped.
const MaxShadowQueueBytes = 64 << 20

// errH2CShadow: validation keeps h2c endpoints out of shadow versions.
var errH2CShadow = errors.New("shadow copies go over HTTP/1.1; the endpoint is h2c://")

// shadowQueue carries copies to the shadow workers; its size and worker
// count are fixed at start.
type shadowQueue struct {
	ch      chan *shadowJob
	workers int
	bytes   atomic.Int64 // body bytes of the jobs in ch, at most MaxShadowQueueBytes
	pool    sync.Pool    // of *shadowJob
}

func newShadowQueue(c configs.Shadowing) *shadowQueue {
	q := &shadowQueue{ch: make(chan *shadowJob, c.QueueSize), workers: c.Concurrency}
	q.pool.New = func() any { return new(shadowJob) }
	return q
}

// shadowJob is one copy on its way to a shadow version.
type shadowJob struct {
	snap   *snapshot
	mod    *routing.Model
	v      *routing.Version // the shadow
	req    fasthttp.Request
	rid    []byte
	start  time.Time
	status int           // the primary's
	lat    time.Duration // the primary's
	body   []byte        // the primary's answer
	ct     []byte        // its Content-Type
	infLen int           // its Inference-Header-Content-Length, -1 when absent
	size   int64
}

// release returns a job to the pool, keeping its buffers (the request's
// too) unless they grew large.
func (q *shadowQueue) release(j *shadowJob) {
	j.req.Reset()
	j.snap, j.mod, j.v = nil, nil, nil
	j.body, j.ct, j.rid = j.body[:0], j.ct[:0], j.rid[:0]
	if cap(j.body) > 1<<20 {
		j.body = nil
	}
	q.pool.Put(j)
}

// isShadow reports whether version i of mod is a shadow.
func isShadow(mod *routing.Model, i int) bool { return mod.Config.Versions[i].Shadow }

// shadow1 queues copies of an HTTP/1.1 exchange whose answer (status, at
// now) is in ctx.Response for the shadows of mod. It never blocks.
func (s *Server) shadow1(ctx *fasthttp.RequestCtx, snap *snapshot, mod *routing.Model, served string, rid []byte, status int, now time.Time) {
	if s.shadowQ == nil || mod.Shadows == 0 {
		return
	}
	var n int
	for i, v := range mod.Versions {
		if isShadow(mod, i) {
			n++
			if v.Name == served { // pinned to a shadow: it answered itself
				return
			}
		}
	}
	if n == 0 || !s.drawn(mod.Config.Routing.ShadowRate, rid) {
		return
	}
	max := mod.Config.Monitor.MaxBodyBytes
	reqBody, respBody := ctx.Request.Body(), ctx.Response.Body()
	for i, v := range mod.Versions {
		if !isShadow(mod, i) {
			continue
		}
		size := int64(len(reqBody) + len(respBody))
		if len(s.shadowQ.ch) == cap(s.shadowQ.ch) { // full: drop before copying
			s.compare.shadow(mod.Name, v.Name).results[shadowDropped].Inc()
			continue
		}
		if len(reqBody) > max || len(respBody) > max || s.shadowQ.bytes.Add(size) > MaxShadowQueueBytes {
			if len(reqBody) <= max && len(respBody) <= max {
				s.shadowQ.bytes.Add(-size)
			}
			s.compare.shadow(mod.Name, v.Name).results[shadowDropped].Inc()
			continue
		}
		j := s.shadowQ.pool.Get().(*shadowJob)
		j.snap, j.mod, j.v, j.start, j.status, j.lat, j.size = snap, mod, v, ctx.Time(), status, now.Sub(ctx.Time()), size
		ctx.Request.CopyTo(&j.req)
		j.rid = append(j.rid[:0], rid...)
		j.body = append(j.body[:0], respBody...)
		j.ct = append(j.ct[:0], ctx.Response.Header.ContentType()...)
		j.infLen = headerInt(ctx.Response.Header.PeekCanonical(keyInferenceLen))
		select {
		case s.shadowQ.ch <- j:
		default:
			s.shadowQ.bytes.Add(-size)
			s.shadowQ.release(j)
			s.compare.shadow(mod.Name, v.Name).results[shadowDropped].Inc()
		}
	}
}

// shadowGrace is how long runShadows waits, once ctx is done, for copies
// in flight; a copy to a hanging shadow may otherwise hold shutdown for
// its whole shadow_timeout.
const shadowGrace = time.Second

// runShadows runs the shadow workers until ctx is done; copies still
// queued then are released unsent, and copies in flight get shadowGrace
// to finish before runShadows returns without them (their workers end by
// their shadow_timeout).
func (s *Server) runShadows(ctx context.Context) {
	q := s.shadowQ
	var wg sync.WaitGroup
	for range q.workers {
		wg.Go(func() {
			w := &shadowWorker{}
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-q.ch:
					q.bytes.Add(-j.size)
					if ctx.Err() == nil {
						s.safeShadow(w, j)
					}
					q.release(j)
				}
			}
		})
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	<-ctx.Done()
	for {
		select {
		case j := <-q.ch:
			q.bytes.Add(-j.size)
			q.release(j)
			continue
		default:
		}
		break
	}
	select {
	case <-stopped:
	case <-time.After(shadowGrace):
		s.log.Warn("shadow copies still in flight at shutdown were abandoned")
	}
}

// shadowWorker holds one worker's reusable buffers.
type shadowWorker struct {
	dec      decode.Decoder
	rows     []decode.Row
	fields   []judge.Field
	primary  []judge.Value
	shadow   []judge.Value
	resp     fasthttp.Response
	deadline time.Time
}

// safeShadow is the worker's boundary: a panic on one copy is logged and
// the worker goes on.
func (s *Server) safeShadow(w *shadowWorker, j *shadowJob) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic sending a shadow copy", "model", j.mod.Name, "version", j.v.Name, "panic", r)
			*w = shadowWorker{}
		}
	}()
	s.sendShadow(w, j)
}

// sendShadow sends one copy, compares the answers and counts the result.
func (s *Server) sendShadow(w *shadowWorker, j *shadowJob) {
	mod, v, snap := j.mod, j.v, j.snap
	sh := s.compare.shadow(mod.Name, v.Name)
	resp := &w.resp
	resp.Reset()
	a := attempt{snap: snap, mod: mod, v: v, pinned: true}
	ep, err := a.acquire(v.PickEndpoint(rand.Uint64()))
	var lat time.Duration
	status := 0
	if err == nil {
		if u := snap.upstreams[ep.ID]; u.hc == nil {
			err = errH2CShadow
			snap.breakers[ep.ID].Record(0, nil) // give back the permit unjudged
			snap.done(ep)
		} else {
			ep.Begin()
			start := s.now()
			err = u.hc.DoDeadline(&j.req, resp, start.Add(mod.Config.Routing.ShadowTimeout))
			lat = s.now().Sub(start)
			if err == nil {
				status = resp.StatusCode()
			}
			a.record(ep, status, err)
			snap.done(ep)
		}
	}
	result := shadowCompared
	switch {
	case err != nil && isTimeout(err):
		result = shadowTimeout
	case err != nil || judge.IsError(status):
		result = shadowError
	}
	sh.results[result].Inc()

	spec := &decode.Spec{Protocol: mod.Config.Protocol, Features: mod.Config.Monitor.Features,
		Paths: mod.Config.Monitor.Paths, PredictionPath: mod.Config.Monitor.PredictionPath}
	in := decode.Input{Path: string(j.req.URI().Path()), ReqContentType: string(j.req.Header.ContentType()),
		ReqBody: j.req.Body(), InferenceHeaderLen: headerInt(j.req.Header.PeekCanonical(keyInferenceLen))}
	w.primary, w.shadow = w.primary[:0], w.shadow[:0]
	if err == nil { // without the shadow's answer there is nothing to compare
		pin := in
		pin.RespContentType, pin.RespBody, pin.RespInferenceHeaderLen, pin.Status = string(j.ct), j.body, j.infLen, j.status
		w.primary = w.decodePredictions(spec, &pin, w.primary)
		sin := in
		sin.RespContentType, sin.RespBody, sin.Status = string(resp.Header.ContentType()), resp.Body(), status
		sin.RespInferenceHeaderLen = headerInt(resp.Header.PeekCanonical(keyInferenceLen))
		w.shadow = w.decodePredictions(spec, &sin, w.shadow)
	}
	out := sh.stats.Add(judge.Pair{PrimaryStatus: j.status, ShadowStatus: status,
		PrimaryLatency: j.lat, ShadowLatency: lat, Primary: w.primary, Shadow: w.shadow})
	for _, d := range out.AbsDiffs {
		sh.absDiff.Observe(d)
	}
	if out.Rows > 0 {
		sh.agreement.Set(out.Agreement)
	}
	if err == nil && s.sampled(mod, j.rid) {
		s.sampleShadow(j, resp, status, lat)
	}
}

// decodePredictions decodes an exchange and appends one prediction per
// row that has one (judge.Reduce of its prediction fields).
func (w *shadowWorker) decodePredictions(spec *decode.Spec, in *decode.Input, dst []judge.Value) []judge.Value {
	rows, err := w.dec.Decode(w.rows[:0], spec, in)
	w.rows = rows[:0]
	if err != nil {
		return dst
	}
	dst, w.fields = appendPredictions(dst, w.fields, rows)
	return dst
}

// appendPredictions appends the prediction of each row that has one;
// fields is scratch space, returned for reuse.
func appendPredictions(dst []judge.Value, fields []judge.Field, rows []decode.Row) ([]judge.Value, []judge.Field) {
	for _, r := range rows {
		fields = fields[:0]
		for _, f := range r.Predictions {
			fields = append(fields, judge.Field{Name: f.Name,
				Value: judge.Value{Num: f.Value.Num, Cat: f.Value.Cat, IsCat: f.Value.IsCat}})
		}
		if v, ok := judge.Reduce(fields); ok {
			dst = append(dst, v)
		}
	}
	return dst, fields
}

// sampleShadow hands the shadow's exchange to the drift monitor as a
// sample of the shadow version: its prediction drift against the primary
// (reference: version:) and its ground-truth accuracy come from there.
func (s *Server) sampleShadow(j *shadowJob, resp *fasthttp.Response, status int, lat time.Duration) {
	smp := s.monitor.AcquireSample()
	smp.Model, smp.Version, smp.Time = j.mod.Name, j.v.Name, j.start
	smp.SetMeta(j.rid, j.req.URI().Path(), j.req.Header.ContentType(), resp.Header.ContentType())
	smp.Input.Status = status
	smp.Input.Latency, smp.Input.TTFB = lat, lat
	smp.Input.InferenceHeaderLen = headerInt(j.req.Header.PeekCanonical(keyInferenceLen))
	smp.Input.RespInferenceHeaderLen = headerInt(resp.Header.PeekCanonical(keyInferenceLen))
	smp.AppendReq(j.req.Body())
	smp.AppendResp(resp.Body())
	s.monitor.Offer(smp)
}

// warnFixedAtStart logs the shadowing and feedback keys a reload changed:
// the queue and the store keep the sizes they started with.
func (s *Server) warnFixedAtStart(prev, next *configs.Config) {
	if prev.Shadowing != next.Shadowing || prev.Feedback != next.Feedback {
		s.log.Warn("shadowing and feedback settings change only on restart",
			"shadowing.queue_size", prev.Shadowing.QueueSize, "shadowing.concurrency", prev.Shadowing.Concurrency,
			"feedback.max_entries", prev.Feedback.MaxEntries, "feedback.ttl", prev.Feedback.TTL.String())
	}
}
