package h2relay

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxPendingControl caps what a client connection may have waiting for
// its slow-path writer beyond what was buffered when it started (no DATA
// is written to a connection while its writer runs, see push): HEADERS,
// trailers, RST_STREAM, WINDOW_UPDATE, PING and SETTINGS acks. Over it
// the client is dropped.
const maxPendingControl = 1 << 20

// fastWait bounds a fast-path write to a client connection that offers
// no non-blocking write (not a syscall.Conn): past it, the rest goes to
// the slow-path writer.
const fastWait = time.Millisecond

var errPendingFull = errors.New("h2relay: client not reading, too much pending")

// sink is what a client connection's buffered writer flushes into. Any
// goroutine may flush a client connection (its own reader, an upstream
// connection's reader, a Serve goroutine), so none may block on the
// client's socket: sink writes what the kernel takes at once and hands
// the rest to a slow-path writer goroutine, started on demand, that
// finishes it under the full WriteTimeout and exits once caught up.
// While that writer runs, what is flushed is appended to its pending
// bytes instead of written, so that the order of frames is kept.
//
// Write is only called under the wconn's wmu; the writer does not take
// wmu.
type sink struct {
	w   *wconn
	nc  net.Conn
	raw syscall.RawConn // nil: fast writes bounded by fastWait instead
	// attempt is a method value made once, so that a raw write does not
	// allocate; p, n and err are its argument and results (wmu held).
	attempt func(fd uintptr) bool
	p       []byte
	n       int
	err     error

	slow atomic.Bool // the slow-path writer runs; set under mu
	mu   sync.Mutex  // guards pending, spare, dead
	// pending is what the writer has still to write after its current
	// write; spare the buffer it wrote last, kept for reuse while it runs.
	pending, spare []byte
	dead           bool
	// resume is called by the writer once caught up.
	resume func()
}

func (s *sink) init(w *wconn, nc net.Conn, resume func()) {
	s.w, s.nc, s.resume = w, nc, resume
	if sc, ok := nc.(syscall.Conn); ok && canRawWrite {
		if rc, err := sc.SyscallConn(); err == nil {
			s.raw = rc
			s.attempt = s.rawAttempt
		}
	}
}

// Write writes p to the client or queues it for the slow-path writer; it
// never waits for the client. wmu held.
func (s *sink) Write(p []byte) (int, error) {
	if s.slow.Load() {
		s.mu.Lock()
		if s.slow.Load() {
			err := s.queue(p)
			s.mu.Unlock()
			if err != nil {
				return 0, err
			}
			return len(p), nil
		}
		s.mu.Unlock()
	}
	n, err := s.tryWrite(p)
	if err != nil {
		return n, err
	}
	if n == len(p) {
		return n, nil
	}
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return n, net.ErrClosed
	}
	s.pending = append(s.pending, p[n:]...)
	s.slow.Store(true)
	s.mu.Unlock()
	go s.drain()
	return len(p), nil
}

// queue appends p to pending, or drops the client when pending would
// outgrow maxPendingControl, plus what may have been buffered (one full
// buffer, one DATA frame written past it) when the writer started. mu and
// wmu held.
func (s *sink) queue(p []byte) error {
	if s.dead {
		return net.ErrClosed
	}
	if len(s.pending)+len(p) > maxPendingControl+s.w.bw.Size()+s.w.peerMaxF+9 {
		s.dead = true
		_ = s.nc.Close()
		return errPendingFull
	}
	s.pending = append(s.pending, p...)
	return nil
}

// tryWrite writes what the connection takes of p without waiting (or
// waiting at most fastWait).
func (s *sink) tryWrite(p []byte) (int, error) {
	if s.raw == nil {
		_ = s.nc.SetWriteDeadline(time.Now().Add(fastWait))
		n, err := s.nc.Write(p)
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			err = nil
		}
		return n, err
	}
	s.p, s.n, s.err = p, 0, nil
	if err := s.raw.Write(s.attempt); err != nil {
		s.p = nil
		return 0, err
	}
	n, err := s.n, s.err
	s.p, s.err = nil, nil
	return n, err
}

// drain is the slow-path writer: it writes pending until none is left,
// each write under the full WriteTimeout; a client that stays stalled
// longer is dropped.
func (s *sink) drain() {
	for {
		s.mu.Lock()
		if len(s.pending) == 0 || s.dead {
			// Fast-path writes must not meet the deadline set here.
			_ = s.nc.SetWriteDeadline(time.Time{})
			s.pending, s.spare = nil, nil // a slow client is rare: keep nothing
			dead := s.dead
			s.slow.Store(false)
			s.mu.Unlock()
			if !dead && s.resume != nil {
				s.resume()
			}
			return
		}
		buf := s.pending
		s.pending, s.spare = s.spare[:0], nil
		s.mu.Unlock()
		_ = s.nc.SetWriteDeadline(time.Now().Add(s.w.wto))
		_, err := s.nc.Write(buf)
		s.mu.Lock()
		s.spare = buf[:0]
		if err != nil {
			s.dead = true
			s.pending = s.pending[:0]
			_ = s.nc.Close() // the client's reader cleans up
		}
		s.mu.Unlock()
	}
}
