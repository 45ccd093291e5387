package monitor

import (
	"time"
	"unsafe"

	"github.com/vaneproxy/vane/monitor/decode"
)

// maxPooledBody bounds the buffers a released sample keeps for reuse: a
// rare huge body must not pin its memory in the pool.
const maxPooledBody = 4 << 20

// MaxQueueBytes bounds the request and response bytes of the samples
// waiting in the queue, whatever sampling.queue_size and max_body_bytes
// allow: a sample that would go over it is dropped as queue_full.
const MaxQueueBytes = 64 << 20

// Sample is one request/response exchange on its way to the monitor. The
// proxy gets one from AcquireSample, sets the exported fields, copies the
// bodies in with AppendReq and AppendResp, and hands it to Offer (or
// Release when it gives up on it). After Offer or Release the sample
// belongs to the monitor again and must not be touched.
type Sample struct {
	// Model and Version name the configured model and the version that
	// served the request.
	Model, Version string
	// RequestID joins the sample with logs; never used as a label.
	RequestID string
	// Time is when the request arrived. It is informational: windows
	// are timed by the monitor's own clock (Options.Now).
	Time time.Time
	// Input is what the decoder reads. ReqBody and RespBody are kept
	// pointing at the sample's pooled buffers by AppendReq and AppendResp;
	// set the other fields directly. Status must be the upstream status:
	// predictions are decoded from 2xx answers only (the features of
	// other exchanges still count). InferenceHeaderLen and
	// RespInferenceHeaderLen start at -1 (header absent).
	Input decode.Input

	req, resp []byte // pooled buffers behind Input.ReqBody and Input.RespBody
	meta      []byte // pooled buffer behind the strings SetMeta sets
	queued    int64  // body bytes counted in the queue's budget while queued
}

// SetMeta copies the request id, path and content types into the sample's
// pooled buffer and points RequestID, Input.Path, Input.ReqContentType and
// Input.RespContentType at the copies, so that taking a sample allocates
// nothing. The strings are valid until the sample is released; the monitor
// never keeps them beyond that.
func (s *Sample) SetMeta(requestID, path, reqContentType, respContentType []byte) {
	s.meta = append(s.meta[:0], requestID...)
	s.meta = append(s.meta, path...)
	s.meta = append(s.meta, reqContentType...)
	s.meta = append(s.meta, respContentType...)
	b := s.meta
	cut := func(n int) string {
		if n == 0 {
			return ""
		}
		v := unsafe.String(&b[0], n)
		b = b[n:]
		return v
	}
	s.RequestID = cut(len(requestID))
	s.Input.Path = cut(len(path))
	s.Input.ReqContentType = cut(len(reqContentType))
	s.Input.RespContentType = cut(len(respContentType))
}

// AppendReq copies p to the end of the request body.
func (s *Sample) AppendReq(p []byte) {
	s.req = append(s.req, p...)
	s.Input.ReqBody = s.req
}

// AppendResp copies p to the end of the response body.
func (s *Sample) AppendResp(p []byte) {
	s.resp = append(s.resp, p...)
	s.Input.RespBody = s.resp
}

// reset clears the sample for reuse, keeping its buffers when they are
// not too large.
func (s *Sample) reset() {
	req, resp, meta := s.req[:0], s.resp[:0], s.meta[:0]
	if cap(req) > maxPooledBody {
		req = nil
	}
	if cap(resp) > maxPooledBody {
		resp = nil
	}
	if cap(meta) > 64<<10 {
		meta = nil
	}
	*s = Sample{req: req, resp: resp, meta: meta}
	s.Input.InferenceHeaderLen, s.Input.RespInferenceHeaderLen = -1, -1
}

func newSample() any {
	s := new(Sample)
	s.reset()
	return s
}

// AcquireSample returns an empty sample from the pool. It never blocks.
func (m *Monitor) AcquireSample() *Sample {
	return m.pool.Get().(*Sample)
}

// Release returns a sample the proxy abandons to the pool. nil is a no-op.
func (m *Monitor) Release(s *Sample) {
	if s == nil {
		return
	}
	s.reset()
	m.pool.Put(s)
}

// Offer queues s for the monitor's workers and reports whether it was
// taken. It never blocks: when the queue is full (sampling.queue_size
// samples, or MaxQueueBytes of bodies) or no config has been applied yet,
// the sample is released and the drop counted. It does not allocate.
func (m *Monitor) Offer(s *Sample) bool {
	q := m.queue.Load()
	if q == nil {
		m.Drop(s.Model, ReasonNotConfigured)
		m.Release(s)
		return false
	}
	s.queued = int64(len(s.req) + len(s.resp))
	if q.bytes.Add(s.queued) > MaxQueueBytes {
		q.bytes.Add(-s.queued)
		m.Drop(s.Model, ReasonQueueFull)
		m.Release(s)
		return false
	}
	select {
	case q.ch <- s:
		return true
	default:
		q.bytes.Add(-s.queued)
		m.Drop(s.Model, ReasonQueueFull)
		m.Release(s)
		return false
	}
}

// dequeued takes a sample off the queue's byte budget.
func (q *sampleQueue) dequeued(s *Sample) {
	q.bytes.Add(-s.queued)
	s.queued = 0
}

// Drop counts a sample of model that was not monitored, by reason (the
// proxy's are ReasonBodyTooLarge, ReasonQueueFull, ReasonStreamAborted).
// It does not allocate for a configured model and a known reason.
func (m *Monitor) Drop(model, reason string) {
	if snap := m.snap.Load(); snap != nil {
		if ms := snap.models[model]; ms != nil {
			for i, r := range knownReasons {
				if r == reason {
					ms.dropped[i].Inc()
					return
				}
			}
		}
	}
	m.metrics.dropped.WithLabelValues(model, reason).Inc()
}

// ShouldSample reports whether the request with this id is sampled at
// rate: deterministic in the id (FNV-1a, then a 64-bit finaliser that
// spreads FNV's weak low bits), so that a request and its response, and
// any retry of the same id, get one answer. rate <= 0 (or NaN) never
// samples, rate >= 1 always does. It does not allocate.
func ShouldSample(rate float64, requestID []byte) bool {
	if !(rate > 0) {
		return false
	}
	if rate >= 1 {
		return true
	}
	h := uint64(14695981039346656037) // FNV-1a offset basis
	for _, c := range requestID {
		h ^= uint64(c)
		h *= 1099511628211 // FNV-1a prime
	}
	// splitmix64's finaliser.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return float64(h>>11)*0x1p-53 < rate
}
