package h2relay

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// hconn is a connection of either side beyond its writing half: its
// reader (framer and worker) and its streams by id. The frame handling
// that is the same toward a client and toward an upstream lives here;
// sconn and uconn embed it and add what their side decides.
type hconn struct {
	wconn
	br *bufio.Reader
	fr *http2.Framer
	wk worker // the reader's

	mu      sync.Mutex // guards streams, and the fields sconn and uconn say
	streams map[uint32]*stream
}

// initConn sets c up on nc: side says which window of a stream (win,
// blocked) is the one toward this peer; maxHeaderList caps the header
// blocks read.
func (c *hconn) initConn(nc net.Conn, side uint8, wto time.Duration, connWin int32, maxHeaderList uint32) {
	c.init(nc, side, wto, connWin)
	c.streams = make(map[uint32]*stream)
	c.br = bufio.NewReaderSize(nc, 16<<10)
	c.fr = http2.NewFramer(nil, c.br)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(defaultMaxFrame) // we advertise no larger
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = maxHeaderList
}

func (c *hconn) get(id uint32) *stream {
	c.mu.Lock()
	st := c.streams[id]
	c.mu.Unlock()
	return st
}

// readFailed sorts what ReadFrame returned. A stream error comes back
// with goOn set: the caller resets that stream and reads on. A connection
// error or an oversized frame sends GOAWAY (last: the last stream
// processed); anything else (EOF, a deadline) ends the connection quietly.
func (c *hconn) readFailed(err error, last uint32) (se http2.StreamError, goOn bool) {
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &se):
		return se, true
	case errors.As(err, &ce):
		c.connError(last, http2.ErrCode(ce))
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.connError(last, http2.ErrCodeFrameSize)
	}
	return se, false
}

// connError sends GOAWAY; the caller returns and the conn is closed.
func (c *hconn) connError(last uint32, code http2.ErrCode) {
	c.wk.flush()
	c.lock()
	c.goAway(last, code)
	c.unlock()
	c.flush()
}

// applySettings validates, applies and acknowledges the settings both
// sides honour. It returns the streams whose send window toward the peer
// grew (the caller lets them send, sendMore), and the control frames
// answered since the last flush.
func (c *hconn) applySettings(f *http2.SettingsFrame) (grown []*stream, ctrl int, code http2.ErrCode) {
	if err := f.ForeachSetting(func(s http2.Setting) error { return s.Valid() }); err != nil {
		var ce http2.ConnectionError
		if errors.As(err, &ce) {
			return nil, 0, http2.ErrCode(ce)
		}
		return nil, 0, http2.ErrCodeProtocol
	}
	var delta int64
	c.lock()
	for i := range f.NumSettings() {
		switch s := f.Setting(i); s.ID {
		case http2.SettingInitialWindowSize:
			delta += int64(s.Val) - int64(c.peerInit)
			c.peerInit = int32(s.Val)
		case http2.SettingMaxFrameSize:
			c.peerMaxF = int(s.Val)
		case http2.SettingHeaderTableSize:
			c.henc.SetMaxDynamicTableSizeLimit(min(s.Val, 4096))
		}
	}
	if delta != 0 {
		c.mu.Lock()
		for _, st := range c.streams {
			st.win[c.side] += delta
			if delta > 0 {
				grown = append(grown, st)
			}
		}
		c.mu.Unlock()
	}
	c.settings(true)
	c.ctrl++
	ctrl = c.ctrl
	c.unlock()
	c.wk.mark(&c.wconn)
	return grown, ctrl, http2.ErrCodeNo
}

// onConnWindow is a WINDOW_UPDATE of the whole connection: the streams
// it held back send more.
func (c *hconn) onConnWindow(inc int64) http2.ErrCode {
	c.lock()
	c.sendWin += inc
	if c.sendWin > maxWindow {
		c.unlock()
		return http2.ErrCodeFlowControl
	}
	blocked := c.blocked
	c.blocked = nil
	for _, st := range blocked {
		st.blocked[c.side] = false
	}
	c.unlock()
	c.sendMore(blocked)
	return http2.ErrCodeNo
}

// onStreamWindow is a WINDOW_UPDATE of stream id, st's toward c: st
// sends more, or fails the side whose window passed 2^31-1. An upstream's
// update for an attempt st has left is dropped.
func (c *hconn) onStreamWindow(st *stream, id uint32, inc int64) {
	st.mu.Lock()
	if st.towards(c, id) {
		c.lock()
		st.win[c.side] += inc
		over := st.win[c.side] > maxWindow
		c.unlock()
		switch {
		case !over:
			st.sendMore(c)
		case c.side == toClient:
			st.finish(ErrStreamProtocol, http2.ErrCodeFlowControl, &c.wk)
		default:
			st.upstreamBroke(ErrUpstreamProtocol, http2.ErrCodeFlowControl, &c.wk)
		}
	}
	st.mu.Unlock()
}

// resume lets the streams waiting in c.blocked try again once a client's
// slow-path writer caught up (those still without connection window wait
// on). It runs on the writer's goroutine, with a worker of its own.
func (c *hconn) resume() {
	c.lock()
	blocked := c.blocked
	c.blocked = nil
	for _, st := range blocked {
		st.blocked[c.side] = false
	}
	c.unlock()
	if len(blocked) == 0 {
		return
	}
	wk := getWorker()
	for _, st := range blocked {
		st.mu.Lock()
		st.tryFlushResp(wk)
		st.mu.Unlock()
	}
	putWorker(wk)
}

// towards says whether stream id on c is st's: its client stream, or the
// upstream stream of its current attempt. st.mu held.
func (st *stream) towards(c *hconn, id uint32) bool {
	if c.side == toClient {
		return st.cid == id
	}
	return st.uc != nil && &st.uc.hconn == c && st.uid == id
}

// sendMore sends toward c what st's windows now allow: the answer toward
// a client, the request toward the upstream connection of its current
// attempt (nothing when the attempt moved on). st.mu held.
func (st *stream) sendMore(c *hconn) {
	if c.side == toClient {
		st.tryFlushResp(&c.wk)
	} else if st.uc != nil && &st.uc.hconn == c {
		st.tryFlushReq(&c.wk)
	}
}

// sendMore lets each of sts send toward c.
func (c *hconn) sendMore(sts []*stream) {
	for _, st := range sts {
		st.mu.Lock()
		st.sendMore(c)
		st.mu.Unlock()
	}
}

// without returns s without its first x, in the same order, the slot
// freed at its end cleared.
func without[T comparable](s []T, x T) []T {
	for i, y := range s {
		if y == x {
			copy(s[i:], s[i+1:])
			var zero T
			s[len(s)-1] = zero
			return s[:len(s)-1]
		}
	}
	return s
}

// pong answers a PING and returns the control frames answered since the
// last flush.
func (c *hconn) pong(data [8]byte) int {
	c.lock()
	c.ping(true, data)
	c.ctrl++
	n := c.ctrl
	c.unlock()
	c.wk.mark(&c.wconn)
	return n
}

// takeData counts n bytes of DATA against the connection's receive
// window; false when the peer sent more than it may.
func (c *hconn) takeData(n int32) bool {
	return c.recvAvail.Add(-int64(n)) >= 0
}

// discard gives back the connection window of n bytes of DATA no stream
// takes.
func (c *hconn) discard(n int32) {
	c.lock()
	c.giveBack(n)
	c.unlock()
	c.wk.mark(&c.wconn)
}
