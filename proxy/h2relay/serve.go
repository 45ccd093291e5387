package h2relay

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

var (
	errStreamDone  = errors.New("h2relay: stream closed")
	errHeadersSent = errors.New("h2relay: response headers already sent")
	errNoHeaders   = errors.New("h2relay: response headers not sent")
)

// serveStream is the ServerStream of a Serve route: the blocking side of
// a stream, on the Serve goroutine. Everything goes through stream.mu.
type serveStream struct{ st *stream }

func (st *stream) runServe(fn func(*ServerStream)) {
	ss := &ServerStream{impl: serveStream{st}}
	defer func() {
		// A panic in Serve is the stream's end, not the process's: the
		// stream is reset, the connection and its other streams go on,
		// and the Observer's Done sees the panic value.
		p := recover()
		wk := getWorker()
		st.mu.Lock()
		if !st.done {
			if p != nil {
				st.finish(fmt.Errorf("%w: Serve panicked: %v", ErrServeReset, p), http2.ErrCodeInternal, wk)
			} else if !st.headersSent {
				st.finish(ErrServeReset, http2.ErrCodeInternal, wk)
			} else if !st.respEnd {
				st.respEnd = true
				st.tryFlushResp(wk)
			}
		}
		st.mu.Unlock()
		putWorker(wk)
	}()
	fn(ss)
}

func (s serveStream) Read(p []byte) (int, error) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	for st.reqSent == st.reqRecv && !st.reqEnd && !st.done && !st.expired {
		st.cond.Wait()
	}
	if st.done && st.reqSent != st.reqRecv {
		// finish dropped the body still held: nothing more to read.
		return 0, errStreamDone
	}
	if st.reqSent == st.reqRecv {
		if st.expired && !st.reqEnd {
			return 0, ErrTimeout
		}
		if st.reqEnd {
			return 0, io.EOF
		}
		return 0, errStreamDone
	}
	off := int(st.reqSent - st.reqBase)
	n := copy(p, st.reqBuf[off:])
	st.reqSent += int64(n)
	if st.reqSent == st.reqRecv {
		st.reqBuf = st.reqBuf[:0]
		st.reqBase = st.reqSent
	}
	wk := getWorker()
	st.afterReqSend(wk)
	putWorker(wk)
	return n, nil
}

func (s serveStream) WriteHeaders(status int, h []hpack.HeaderField, endStream bool) error {
	st := s.st
	wk := getWorker()
	defer putWorker(wk)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done || st.clientGone {
		return errStreamDone
	}
	if st.headersSent {
		return errHeadersSent
	}
	st.writeRespHeaders(status, h, nil, endStream, wk)
	if endStream {
		st.respEnd, st.respEndSent = true, true
		st.finish(nil, 0, wk)
	}
	return nil
}

func (s serveStream) Write(p []byte) (int, error) {
	st := s.st
	limit := int(st.sc.srv.streamWin())
	wk := getWorker()
	defer putWorker(wk)
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.headersSent {
		return 0, errNoHeaders
	}
	written := 0
	for written < len(p) {
		for !st.done && !st.respEnd && !st.expired && len(st.respQ)-st.respOff >= limit {
			wk.flush() // before sleeping
			st.cond.Wait()
		}
		if st.expired && !st.done && len(st.respQ)-st.respOff >= limit {
			return written, ErrTimeout
		}
		if st.done || st.clientGone {
			return written, errStreamDone
		}
		if st.respEnd {
			return written, errStreamDone
		}
		n := min(len(p)-written, limit-(len(st.respQ)-st.respOff))
		if st.respQ == nil {
			st.respQ, st.respOwned = getBuf(), true
		}
		st.respQ = append(st.respQ, p[written:written+n]...)
		written += n
		st.respBytes += int64(n)
		st.tryFlushResp(wk)
	}
	return written, nil
}

func (s serveStream) WriteTrailers(h []hpack.HeaderField) error {
	st := s.st
	wk := getWorker()
	defer putWorker(wk)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done || st.clientGone || st.respEnd {
		return errStreamDone
	}
	if !st.headersSent {
		return errNoHeaders
	}
	st.respTrailers = append([]hpack.HeaderField(nil), h...)
	st.respEnd = true
	st.tryFlushResp(wk)
	return nil
}

func (s serveStream) Reset(code http2.ErrCode) {
	st := s.st
	wk := getWorker()
	defer putWorker(wk)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.finish(ErrServeReset, code, wk)
}
