package h2relay

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	kindUpstream = iota
	kindLocal
	kindServe
)

// maxAttempts bounds the tries of one stream, whatever the Observer says.
const maxAttempts = 16

// stream is one client stream and, for an upstream route, its current
// attempt's upstream stream. Its fields are guarded by mu except win and
// blocked, each guarded by the wmu of its side's connection.
// Lock order: stream.mu, then Upstream.mu / a conn's wmu / a conn's mu.
type stream struct {
	mu   sync.Mutex
	sc   *sconn
	cid  uint32
	kind uint8

	method, scheme, authority, path string
	hdr                             []hpack.HeaderField
	obs                             Observer
	respHdr                         []hpack.HeaderField
	retryBuf                        int
	maxBody                         int64
	timer                           *time.Timer
	expired                         bool // a Serve stream's deadline passed
	attempts                        int

	// Request body. reqBuf holds the bytes from absolute offset reqBase to
	// reqRecv; reqSent is how far the current attempt (or Serve's Read)
	// got, reqCredited how much was given back to the client.
	reqBuf      []byte
	reqBase     int64
	reqRecv     int64
	reqSent     int64
	reqCredited int64
	reqOwed     int32 // stream credit not yet sent to the client
	reqAvail    int32 // what the client may still send on the stream
	reqEnd      bool  // the client's END_STREAM arrived
	reqTrailers []hpack.HeaderField
	reqEndSent  bool // END_STREAM went upstream (this attempt)
	noRetry     bool // the body outgrew RetryBuffer, or headers went out
	tooLarge    bool
	declared    int64 // content-length, -1 when absent
	got         int64 // body bytes the client sent
	clientGone  bool  // client reset the stream or its conn is gone

	// The current attempt.
	pendingOn *Upstream
	uc        *uconn
	uid       uint32
	upEnded   bool  // the upstream's END_STREAM (or reset) arrived
	upReset   bool  // the upstream stream is closed by a reset
	respGot   bool  // the upstream's response headers arrived
	respAvail int32 // what the upstream may still send on the stream
	upOwed    int32 // stream credit not yet sent upstream

	// Response toward the client.
	headersSent  bool
	status       int
	respQ        []byte
	respOff      int
	respOwned    bool
	respEnd      bool
	respEndSent  bool
	respTrailers []hpack.HeaderField
	reqBytes     int64
	respBytes    int64
	failErr      error
	done         bool
	cond         *sync.Cond

	// Send windows toward the client (toClient, sc.wmu) and the current
	// attempt's upstream (toUpstream, uc.wmu); blocked: in that conn's
	// blocked list.
	win     [2]int64
	blocked [2]bool
}

func (st *stream) retryable() bool {
	return st.retryBuf > 0 && !st.noRetry && st.reqBase == 0
}

// ---- request direction ----

// onReqData takes a client DATA payload (flow-control accounting done).
func (st *stream) onReqData(p []byte, end bool, wk *worker) {
	if st.done {
		return
	}
	if end {
		st.reqEnd = true
	}
	switch st.kind {
	case kindLocal:
		st.reqRecv += int64(len(p))
		st.reqCredited = st.reqRecv
		st.creditClient(int32(len(p)), wk)
		return
	case kindServe:
		st.reqRecv += int64(len(p))
		st.reqBuf = appendBuf(st.reqBuf, p)
		st.cond.Broadcast()
		return
	}
	st.reqBytes += int64(len(p))
	if st.obs != nil && len(p) > 0 {
		st.obs.RequestData(p)
	}
	if st.tooLarge {
		// Discarded: the window of everything held goes back.
		st.reqRecv += int64(len(p))
		owed := st.reqRecv - st.reqCredited
		st.reqSent, st.reqBase, st.reqCredited = st.reqRecv, st.reqRecv, st.reqRecv
		st.reqBuf = st.reqBuf[:0]
		st.creditClient(int32(owed), wk)
		return
	}
	if st.maxBody > 0 && st.reqBytes > st.maxBody {
		st.tooLarge = true
		st.reqRecv += int64(len(p))
		if st.headersSent {
			st.finish(ErrRequestTooLarge, http2.ErrCodeCancel, wk)
			return
		}
		st.noRetry = true
		st.failAttempt(ErrRequestTooLarge, wk)
		return
	}
	if !st.noRetry && st.retryBuf > 0 && st.reqRecv+int64(len(p)) > int64(st.retryBuf) {
		st.noRetry = true
	}
	if st.noRetry && st.reqSent == st.reqRecv && st.uc != nil && !st.reqEndSent {
		// Fast path: nothing queued, forward straight from the frame.
		st.reqBuf = st.reqBuf[:0]
		st.reqBase = st.reqRecv
		st.reqRecv += int64(len(p))
		k := st.pushReq(p, wk)
		st.reqSent += int64(k)
		st.reqBase = st.reqSent
		if k < len(p) {
			st.reqBuf = appendBuf(st.reqBuf, p[k:])
		}
		st.afterReqSend(wk)
		if k == len(p) && st.reqEnd && !st.reqEndSent {
			st.tryFlushReq(wk)
		}
		return
	}
	st.reqRecv += int64(len(p))
	st.reqBuf = appendBuf(st.reqBuf, p)
	st.tryFlushReq(wk)
}

func appendBuf(b, p []byte) []byte {
	if len(p) == 0 {
		return b
	}
	if b == nil {
		b = getBuf()
	}
	return append(b, p...)
}

// push writes as much of p as the send windows toward w allow, as DATA
// on stream id, END_STREAM with its last byte when end; it returns how
// much went and whether END_STREAM did. When the connection's window
// stops it, st waits in w.blocked for a connection WINDOW_UPDATE; so it
// does while the connection is held (a client's slow-path writer has not
// caught up), so that a client that does not read is not sent more DATA
// than what is already pending.
func (st *stream) push(w *wconn, id uint32, p []byte, end bool, wk *worker) (k int, ended bool) {
	win := &st.win[w.side]
	w.lock()
	for k < len(p) {
		n := int64(len(p) - k)
		n = min(n, int64(w.peerMaxF), *win, w.sendWin)
		held := w.held()
		if n <= 0 || held {
			if (held || w.sendWin <= 0) && *win > 0 && !st.blocked[w.side] {
				st.blocked[w.side] = true
				w.blocked = append(w.blocked, st)
			}
			break
		}
		ended = end && k+int(n) == len(p)
		w.data(id, ended, p[k:k+int(n)])
		*win -= n
		w.sendWin -= n
		k += int(n)
	}
	w.unlock()
	if k > 0 {
		wk.mark(w)
	}
	return k, ended
}

// pushReq writes as much of p (the tail of the request body) upstream as
// the windows allow and returns how much went.
func (st *stream) pushReq(p []byte, wk *worker) int {
	k, ended := st.push(&st.uc.wconn, st.uid, p, st.reqEnd && st.reqTrailers == nil, wk)
	if ended {
		st.reqEndSent = true
	}
	return k
}

// tryFlushReq sends what is queued of the request to the current attempt.
func (st *stream) tryFlushReq(wk *worker) {
	if st.uc == nil || st.reqEndSent || st.done || st.upReset {
		return
	}
	off := int(st.reqSent - st.reqBase)
	if off < len(st.reqBuf) {
		k := st.pushReq(st.reqBuf[off:], wk)
		st.reqSent += int64(k)
		if off+k < len(st.reqBuf) {
			st.afterReqSend(wk)
			return
		}
	}
	if st.reqEnd && !st.reqEndSent {
		st.uc.endStream(st.uid, st.reqTrailers)
		wk.mark(&st.uc.wconn)
		st.reqEndSent = true
	}
	st.afterReqSend(wk)
}

// afterReqSend gives the client back the window of what went upstream
// and drops sent bytes no retry needs.
func (st *stream) afterReqSend(wk *worker) {
	if n := st.reqSent - st.reqCredited; n > 0 {
		st.reqCredited = st.reqSent
		st.creditClient(int32(n), wk)
	}
	if !st.retryable() && st.reqSent > st.reqBase {
		off := int(st.reqSent - st.reqBase)
		if off == len(st.reqBuf) {
			st.reqBuf = st.reqBuf[:0]
		} else if off > len(st.reqBuf)/2 {
			st.reqBuf = st.reqBuf[:copy(st.reqBuf, st.reqBuf[off:])]
		} else {
			return
		}
		st.reqBase = st.reqSent
	}
}

// creditClient gives n request bytes of window back to the client: to
// the connection always, to the stream while the client may send more.
func (st *stream) creditClient(n int32, wk *worker) {
	sc := st.sc
	if n <= 0 || sc == nil {
		return
	}
	sc.lock()
	if !st.reqEnd && !st.done && !st.clientGone {
		st.reqOwed += n
		if st.reqOwed >= sc.srv.streamWin()/4 {
			sc.windowUpdate(st.cid, uint32(st.reqOwed))
			st.reqAvail += st.reqOwed
			st.reqOwed = 0
		}
	}
	sc.giveBack(n)
	sc.unlock()
	wk.mark(&sc.wconn)
}

// ---- response direction ----

// pushResp writes as much of p (the tail of the answer) to the client as
// the windows allow.
func (st *stream) pushResp(p []byte, wk *worker) int {
	k, ended := st.push(&st.sc.wconn, st.cid, p, st.respEnd && st.respTrailers == nil, wk)
	if ended {
		st.respEndSent = true
	}
	return k
}

// tryFlushResp sends what is queued of the answer to the client, ends it
// when it is all out, and finishes the stream then.
func (st *stream) tryFlushResp(wk *worker) {
	if st.done || !st.headersSent {
		return
	}
	if st.clientGone {
		return
	}
	sent := 0
	if st.respOff < len(st.respQ) {
		k := st.pushResp(st.respQ[st.respOff:], wk)
		st.respOff += k
		sent = k
	}
	if st.respOff == len(st.respQ) {
		if st.respOwned {
			st.respQ = st.respQ[:0]
		} else {
			st.respQ = nil
		}
		st.respOff = 0
		if st.respEnd && !st.respEndSent {
			st.sc.endStream(st.cid, st.respTrailers)
			wk.mark(&st.sc.wconn)
			st.respEndSent = true
		}
	}
	if sent > 0 {
		st.creditUpstream(int32(sent), wk)
		if st.cond != nil {
			st.cond.Broadcast()
		}
	}
	if st.respEndSent {
		st.finish(nil, 0, wk)
	}
}

// creditUpstream gives n response bytes of window back to the upstream.
func (st *stream) creditUpstream(n int32, wk *worker) {
	uc := st.uc
	if uc == nil || n <= 0 {
		return
	}
	uc.lock()
	if !st.upEnded {
		st.upOwed += n
		if st.upOwed >= uc.u.pool.opt.StreamWindow/4 {
			uc.windowUpdate(st.uid, uint32(st.upOwed))
			st.respAvail += st.upOwed
			st.upOwed = 0
		}
	}
	uc.giveBack(n)
	uc.unlock()
	wk.mark(&uc.wconn)
}

// writeRespHeaders sends the answer's headers to the client, the route's
// ResponseHeader replacing the fields of the same names.
func (st *stream) writeRespHeaders(status int, h []hpack.HeaderField, extra []hpack.HeaderField, end bool, wk *worker) {
	st.headersSent = true
	st.status = status
	if st.clientGone {
		return
	}
	sc := st.sc
	sc.lock()
	sc.field(":status", statusString(status))
outer:
	for _, f := range h {
		switch f.Name {
		case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			continue // HTTP/1.1 connection fields are malformed in HTTP/2
		}
		for i := range extra {
			if extra[i].Name == f.Name {
				continue outer
			}
		}
		_ = sc.henc.WriteField(f)
	}
	for _, f := range extra {
		_ = sc.henc.WriteField(f)
	}
	sc.headerBlock(st.cid, end)
	sc.unlock()
	wk.mark(&sc.wconn)
}

// answer writes a complete response of the relay's own.
func (st *stream) answer(r *Response, wk *worker) {
	end := len(r.Body) == 0 && r.Trailer == nil
	st.writeRespHeaders(r.Status, r.Header, nil, end, wk)
	st.respEnd = true
	if end || st.clientGone {
		st.respEndSent = true
		st.finish(nil, 0, wk)
		return
	}
	if st.respOwned {
		putBuf(st.respQ)
	}
	st.respQ, st.respOff, st.respOwned = r.Body, 0, false
	st.respTrailers = r.Trailer
	st.tryFlushResp(wk)
}

func defaultAnswer(err error) *Response {
	switch {
	case errors.Is(err, ErrTimeout):
		return &Response{Status: 504}
	case errors.Is(err, ErrRequestTooLarge):
		return &Response{Status: 413}
	}
	return &Response{Status: 502}
}

// ---- attempts ----

// attempt sends the request (again) to u.
func (st *stream) attempt(u *Upstream, rh []hpack.HeaderField, wk *worker) {
	st.attempts++
	st.respHdr = rh
	st.reqSent = st.reqBase
	st.reqEndSent = false
	st.respGot, st.upEnded, st.upReset = false, false, false
	if err := u.acquire(st, wk); err != nil {
		st.failAttempt(err, wk)
	}
}

// failAttempt ends the current attempt before the answer's headers went
// to the client and asks the Observer what next.
func (st *stream) failAttempt(err error, wk *worker) {
	st.detach(http2.ErrCodeCancel, wk)
	if st.done {
		return
	}
	if st.clientGone {
		st.finish(err, http2.ErrCodeCancel, wk)
		return
	}
	retry := st.retryable() && !errors.Is(err, ErrTimeout) && st.attempts < maxAttempts
	var next *Attempt
	var ans *Response
	if st.obs != nil {
		next, ans = st.obs.Failed(err, retry)
	}
	if next != nil && next.Upstream != nil && retry {
		st.attempt(next.Upstream, next.ResponseHeader, wk)
		return
	}
	if ans == nil {
		ans = defaultAnswer(err)
	}
	st.failErr = err
	st.answer(ans, wk)
}

// detach lets go of the current attempt's upstream stream, resetting it
// with code unless it is closed already.
func (st *stream) detach(code http2.ErrCode, wk *worker) {
	if u := st.pendingOn; u != nil {
		st.pendingOn = nil
		u.removePending(st)
	}
	uc := st.uc
	if uc == nil {
		return
	}
	st.uc = nil
	closed := st.upReset || (st.upEnded && st.reqEndSent)
	uc.lock()
	if !closed {
		uc.rst(st.uid, code)
	}
	// Response bytes received and never relayed still hold the
	// upstream connection's window.
	if q := len(st.respQ) - st.respOff; q > 0 {
		uc.giveBack(int32(q))
	}
	uc.unlock()
	wk.mark(&uc.wconn)
	if st.respOwned {
		st.respQ = st.respQ[:0]
	}
	st.respOff = 0
	uc.removeStream(st.uid)
	uc.release(wk)
}

// finish ends the stream: both sides closed (reset with code when err
// is not nil), the Observer's Done called.
func (st *stream) finish(err error, code http2.ErrCode, wk *worker) {
	if st.done {
		return
	}
	st.done = true
	if st.timer != nil {
		st.timer.Stop()
	}
	st.detach(http2.ErrCodeCancel, wk)
	sc := st.sc
	owed := st.reqRecv - st.reqCredited
	st.reqCredited = st.reqRecv
	sc.lock()
	if !st.clientGone {
		if err != nil {
			sc.rst(st.cid, code)
		} else if !st.reqEnd {
			sc.rst(st.cid, http2.ErrCodeNo)
		}
	}
	sc.giveBack(int32(owed))
	sc.unlock()
	wk.mark(&sc.wconn)
	sc.removeStream(st, err == nil)
	if st.obs != nil {
		o := Outcome{Status: st.status, Err: err, ReqBytes: st.reqBytes, RespBytes: st.respBytes, HeadersSent: st.headersSent}
		if err == nil {
			o.Err = st.failErr
		}
		st.obs.Done(o)
	}
	putBuf(st.reqBuf)
	st.reqBuf = nil
	if st.respOwned {
		putBuf(st.respQ)
	}
	st.respQ = nil
	if st.cond != nil {
		st.cond.Broadcast()
	}
}

// onDeadline is the Route.Deadline timer.
func (st *stream) onDeadline() {
	wk := getWorker()
	st.mu.Lock()
	if st.kind == kindServe {
		// Serve answers for itself: its blocked Read or Write returns
		// ErrTimeout, and it decides what the client gets.
		st.expired = true
		st.cond.Broadcast()
	} else if !st.done {
		if !st.headersSent {
			st.failAttempt(ErrTimeout, wk)
		} else {
			st.finish(ErrTimeout, http2.ErrCodeCancel, wk)
		}
	}
	st.mu.Unlock()
	putWorker(wk)
}

// ---- upstream events (upstream conn's reader) ----

func (st *stream) onRespHeaders(f *http2.MetaHeadersFrame, wk *worker) {
	if st.done {
		return
	}
	end := f.StreamEnded()
	if !st.respGot {
		status, ok := parseStatus(f.PseudoValue("status"))
		if !ok {
			st.upstreamBroke(ErrUpstreamProtocol, http2.ErrCodeProtocol, wk)
			return
		}
		if status < 200 {
			if end {
				st.upstreamBroke(ErrUpstreamProtocol, http2.ErrCodeProtocol, wk)
			}
			return // 1xx: informational, dropped
		}
		st.respGot = true
		if end {
			st.upEnded = true
		}
		h := f.RegularFields()
		if st.obs != nil {
			retry := st.retryable() && st.attempts < maxAttempts
			if a := st.obs.ResponseHeaders(status, h, end, retry); a != nil && a.Upstream != nil && retry {
				st.detach(http2.ErrCodeCancel, wk)
				st.attempt(a.Upstream, a.ResponseHeader, wk)
				return
			}
		}
		st.noRetry = true
		st.afterReqSend(wk)
		st.writeRespHeaders(status, h, st.respHdr, end, wk)
		if end {
			st.respEnd, st.respEndSent = true, true
			st.finish(nil, 0, wk)
		}
		return
	}
	if !end {
		st.upstreamBroke(ErrUpstreamProtocol, http2.ErrCodeProtocol, wk)
		return
	}
	st.upEnded = true
	h := f.RegularFields()
	if st.obs != nil {
		st.obs.Trailers(h)
	}
	st.respTrailers = h
	st.respEnd = true
	st.tryFlushResp(wk)
}

func (st *stream) onRespData(p []byte, flowLen int32, end bool, wk *worker) {
	uc := st.uc
	st.respAvail -= flowLen
	if st.respAvail < 0 || !st.respGot {
		// Over the window we gave, or DATA before HEADERS.
		uc.lock()
		uc.giveBack(flowLen)
		uc.unlock()
		st.upstreamBroke(ErrUpstreamProtocol, http2.ErrCodeFlowControl, wk)
		return
	}
	if pad := flowLen - int32(len(p)); pad > 0 {
		st.creditUpstream(pad, wk)
	}
	if end {
		st.upEnded = true
		st.respEnd = true
	}
	st.respBytes += int64(len(p))
	if st.obs != nil && len(p) > 0 {
		st.obs.ResponseData(p)
	}
	if st.respOff == len(st.respQ) && !st.clientGone {
		k := st.pushResp(p, wk)
		if k > 0 {
			st.creditUpstream(int32(k), wk)
		}
		p = p[k:]
	}
	if len(p) > 0 {
		if st.respQ == nil || !st.respOwned {
			st.respQ, st.respOwned = getBuf(), true
		}
		st.respQ = append(st.respQ, p...)
	}
	st.tryFlushResp(wk)
}

// onRespReset is the upstream's RST_STREAM.
func (st *stream) onRespReset(code http2.ErrCode, wk *worker) {
	if st.done {
		return
	}
	if st.upEnded && code == http2.ErrCodeNo {
		// The answer is complete; the upstream wants no more request.
		st.upReset = true
		st.reqEndSent = true
		return
	}
	st.upReset, st.upEnded = true, true
	var err error = ResetError{code}
	if code == http2.ErrCodeRefusedStream {
		err = refusedErr
	}
	if !st.headersSent {
		st.failAttempt(err, wk)
		return
	}
	st.finish(err, code, wk)
}

// upstreamBroke ends the attempt because of the upstream side (protocol
// error, connection lost, GOAWAY).
func (st *stream) upstreamBroke(err error, code http2.ErrCode, wk *worker) {
	if st.done {
		return
	}
	if !st.headersSent {
		st.failAttempt(err, wk)
		return
	}
	st.finish(err, http2.ErrCodeInternal, wk)
}

func parseStatus(s string) (int, bool) {
	if len(s) != 3 {
		return 0, false
	}
	n := 0
	for i := 0; i < 3; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 100
}
