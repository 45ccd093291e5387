package proxy

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vaneproxy/vane/monitor"
	"github.com/vaneproxy/vane/routing"
)

// The sampling tee of the HTTP/2 path (gRPC and other h2c requests): the
// request body is copied as the upstream transport reads it, the answer as
// the client is sent it, each up to monitor.max_body_bytes; the exchange
// goes to the monitor when both sides are whole. Like the HTTP/1.1 tee it
// never blocks and never changes what the client gets.

// proxy2 runs the reverse proxy for r (whose context carries its target),
// sampling the exchange when its model samples this request id.
func (s *Server) proxy2(sw *statusWriter, r *http.Request, mod *routing.Model, version, rid string, start time.Time) {
	if !s.sampled(mod, strBytes(rid)) {
		s.rp.ServeHTTP(sw, r)
		return
	}
	max := mod.Config.Monitor.MaxBodyBytes
	if r.ContentLength > int64(max) {
		s.monitor.Drop(mod.Name, monitor.ReasonBodyTooLarge)
		s.rp.ServeHTTP(sw, r)
		return
	}
	t := &tee2{s: s, smp: s.monitor.AcquireSample(), mod: mod.Name, max: max, start: start, reqDone: true}
	t.smp.Model, t.smp.Version, t.smp.Time = mod.Name, version, start
	if r.Body != nil && r.Body != http.NoBody {
		t.reqDone = false
		r.Body = &teeBody{ReadCloser: r.Body, t: t}
	}
	completed := false
	defer func() { t.finish(r, sw, rid, completed) }() // also when the proxy panics to abort the stream
	s.rp.ServeHTTP(&teeWriter{statusWriter: sw, t: t}, r)
	tg, _ := r.Context().Value(targetKey{}).(*target)
	completed = tg == nil || tg.err == nil
}

// tee2 is one sampled HTTP/2 exchange. The upstream transport reads the
// request body on its own goroutine, so the request side is guarded.
type tee2 struct {
	s     *Server
	smp   *monitor.Sample
	mod   string
	max   int
	start time.Time
	ttfb  time.Duration
	over  bool // the answer outgrew max

	mu      sync.Mutex // guards the request side below and smp's request body
	reqDone bool       // the request body was read to its end
	reqOver bool       // the request body outgrew max
	closed  bool       // finish ran: the sample is no longer ours
}

// teeBody copies the request body as it is read.
type teeBody struct {
	io.ReadCloser
	t *tee2
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	t := b.t
	t.mu.Lock()
	if !t.closed {
		if !t.reqOver && len(t.smp.Input.ReqBody)+n > t.max {
			t.reqOver = true
		}
		if !t.reqOver {
			t.smp.AppendReq(p[:n])
		}
		if err == io.EOF {
			t.reqDone = true
		}
	}
	t.mu.Unlock()
	return n, err
}

// teeWriter copies the answer as the client is sent it. It keeps Flush
// and Unwrap, which streaming and trailers need.
type teeWriter struct {
	*statusWriter
	t *tee2
}

func (w *teeWriter) WriteHeader(code int) {
	w.t.ttfb = w.t.s.now().Sub(w.t.start)
	w.statusWriter.WriteHeader(code)
}

func (w *teeWriter) Write(p []byte) (int, error) {
	if t := w.t; !t.over {
		if len(t.smp.Input.RespBody)+len(p) > t.max {
			t.over = true
		} else {
			t.smp.AppendResp(p)
		}
	}
	return w.statusWriter.Write(p)
}

func (w *teeWriter) Unwrap() http.ResponseWriter { return w.statusWriter }

// finish offers the sample, or drops it (counting why) when a body was too
// large or the exchange did not complete.
func (t *tee2) finish(r *http.Request, sw *statusWriter, rid string, completed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	m := t.s.monitor
	switch {
	case t.over || t.reqOver:
		m.Drop(t.mod, monitor.ReasonBodyTooLarge)
		m.Release(t.smp)
	case !completed || !t.reqDone:
		m.Drop(t.mod, monitor.ReasonStreamAborted)
		m.Release(t.smp)
	default:
		smp := t.smp
		h := sw.Header()
		smp.SetMeta(strBytes(rid), strBytes(r.URL.Path), strBytes(r.Header.Get("Content-Type")), strBytes(h.Get("Content-Type")))
		smp.Input.Status = sw.code
		smp.Input.Latency = t.s.now().Sub(t.start)
		smp.Input.TTFB = t.ttfb
		smp.Input.InferenceHeaderLen = headerInt2(r.Header.Get(headerInferenceLen))
		smp.Input.RespInferenceHeaderLen = headerInt2(h.Get(headerInferenceLen))
		m.Offer(smp)
	}
}

// headerInt2 is headerInt for net/http header values.
func headerInt2(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
