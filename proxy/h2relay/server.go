package h2relay

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Server serves h2c client connections with its Handler. Zero limits
// take the defaults named on each field.
type Server struct {
	Handler Handler

	// MaxConcurrentStreams is advertised and enforced per connection
	// (100); streams over it are refused with REFUSED_STREAM.
	MaxConcurrentStreams uint32
	// StreamWindow is the receive window per stream, the most request
	// body the relay holds for one (256 KiB); ConnWindow the window of a
	// whole connection (1 MiB).
	StreamWindow, ConnWindow int32
	// MaxHeaderListSize caps a request's header block (64 KiB); a larger
	// one is answered 431, a much larger one ends the connection.
	MaxHeaderListSize uint32
	// IdleTimeout closes a connection without streams (5 min).
	IdleTimeout time.Duration
	// PrefaceTimeout bounds the wait for the client's preface and
	// SETTINGS (10 s).
	PrefaceTimeout time.Duration
	// WriteTimeout bounds one write to a client; a client that does not
	// read for that long is dropped (2 s).
	WriteTimeout time.Duration
	// MaxControlFrames caps the PING and SETTINGS frames answered between
	// two flushes (1000).
	MaxControlFrames int
	// MaxResets and the 2x ratio are the rapid-reset guard: a client that
	// reset at least MaxResets streams (100) and more than twice as many
	// as completed gets GOAWAY ENHANCE_YOUR_CALM.
	MaxResets int

	mu       sync.Mutex
	conns    map[*sconn]struct{}
	shutdown bool
}

func (s *Server) maxStreams() uint32 {
	if s.MaxConcurrentStreams == 0 {
		return 100
	}
	return s.MaxConcurrentStreams
}

func (s *Server) streamWin() int32 {
	if s.StreamWindow <= 0 {
		return 256 << 10
	}
	return s.StreamWindow
}

func (s *Server) connWin() int32 {
	if s.ConnWindow <= 0 {
		return 1 << 20
	}
	return max(s.ConnWindow, defaultWindow)
}

func (s *Server) maxHeaderList() uint32 {
	if s.MaxHeaderListSize == 0 {
		return 64 << 10
	}
	return s.MaxHeaderListSize
}

func orDur(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func orInt(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// sconn is a client connection.
type sconn struct {
	hconn
	srv    *Server
	remote netip.AddrPort
	req    Request

	// guarded by hconn.mu
	active    int
	maxSeen   uint32
	resets    int
	completed int
	draining  bool
	idleArmed bool
}

// ServeConn serves one client connection until it ends. c must yield the
// HTTP/2 client preface first (prior knowledge h2c).
func (s *Server) ServeConn(nc net.Conn) {
	c := &sconn{srv: s}
	c.initConn(nc, toClient, orDur(s.WriteTimeout, 2*time.Second), s.connWin(), s.maxHeaderList())
	c.nonBlocking(c.resume)
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.remote = ap
	}
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	if s.conns == nil {
		s.conns = make(map[*sconn]struct{})
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.serve()
	c.close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown sends every connection GOAWAY and waits until their streams
// are done (then closes them), or ctx ends (then closes them anyway).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	conns := make([]*sconn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		c.draining = true
		last := c.maxSeen
		c.mu.Unlock()
		c.lock()
		c.goAway(last, http2.ErrCodeNo)
		c.unlock()
		c.flush()
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			c.mu.Lock()
			idle := c.active == 0
			c.draining = true
			c.mu.Unlock()
			if idle {
				c.flush()
				_ = c.nc.Close()
			}
		}
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				_ = c.nc.Close()
			}
			s.mu.Unlock()
			return ctx.Err()
		case <-t.C:
		}
	}
}

const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

func (c *sconn) serve() {
	s := c.srv
	_ = c.nc.SetReadDeadline(time.Now().Add(orDur(s.PrefaceTimeout, 10*time.Second)))
	var pf [len(clientPreface)]byte
	if _, err := io.ReadFull(c.br, pf[:]); err != nil || string(pf[:]) != clientPreface {
		return
	}
	c.lock()
	c.settings(false,
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: s.maxStreams()},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(s.streamWin())},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: s.maxHeaderList()},
	)
	c.recvAvail.Store(int64(s.connWin()))
	if d := s.connWin() - defaultWindow; d > 0 {
		c.windowUpdate(0, uint32(d))
	}
	c.unlock()
	c.flush()
	f, err := c.fr.ReadFrame()
	if err != nil {
		return
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		c.connError(http2.ErrCodeProtocol)
		return
	}
	if code := c.onSettings(sf); code != http2.ErrCodeNo {
		c.connError(code)
		return
	}
	c.mu.Lock()
	c.armIdle()
	c.mu.Unlock()
	for {
		if c.br.Buffered() == 0 {
			c.wk.flush()
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			if se, goOn := c.readFailed(err, c.lastSeen()); goOn {
				c.streamError(se.StreamID, se.Code)
				continue
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.connError(http2.ErrCodeNo) // idle
			}
			return
		}
		code := http2.ErrCodeNo
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			code = c.onHeaders(f)
		case *http2.DataFrame:
			code = c.onData(f)
		case *http2.WindowUpdateFrame:
			code = c.onWindowUpdate(f)
		case *http2.RSTStreamFrame:
			code = c.onReset(f)
		case *http2.SettingsFrame:
			if f.IsAck() {
				break
			}
			code = c.onSettings(f)
		case *http2.PingFrame:
			if f.IsAck() {
				break
			}
			if c.pong(f.Data) > orInt(s.MaxControlFrames, 1000) {
				code = http2.ErrCodeEnhanceYourCalm
			}
		case *http2.PushPromiseFrame:
			code = http2.ErrCodeProtocol
		case *http2.GoAwayFrame, *http2.PriorityFrame:
		}
		if code != http2.ErrCodeNo {
			c.connError(code)
			return
		}
	}
}

// connError sends GOAWAY; the caller returns and the conn is closed.
func (c *sconn) connError(code http2.ErrCode) {
	c.hconn.connError(c.lastSeen(), code)
}

// lastSeen is the last stream the client opened.
func (c *sconn) lastSeen() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxSeen
}

func (c *sconn) streamError(id uint32, code http2.ErrCode) {
	c.mu.Lock()
	if id%2 == 1 && id > c.maxSeen {
		c.maxSeen = id
	}
	st := c.streams[id]
	c.mu.Unlock()
	if st != nil {
		st.mu.Lock()
		st.finish(ErrStreamProtocol, code, &c.wk)
		st.mu.Unlock()
		return
	}
	c.lock()
	c.rst(id, code)
	c.unlock()
	c.wk.mark(&c.wconn)
}

// close ends every stream left and the connection.
func (c *sconn) close() {
	_ = c.nc.Close()
	c.mu.Lock()
	c.draining = true
	sts := make([]*stream, 0, len(c.streams))
	for _, st := range c.streams {
		sts = append(sts, st)
	}
	c.mu.Unlock()
	for _, st := range sts {
		st.mu.Lock()
		st.clientGone = true
		st.finish(ErrClientGone, http2.ErrCodeCancel, &c.wk)
		st.mu.Unlock()
	}
	c.wk.flush()
}

// armIdle sets the idle read deadline. c.mu held.
func (c *sconn) armIdle() {
	c.idleArmed = true
	_ = c.nc.SetReadDeadline(time.Now().Add(orDur(c.srv.IdleTimeout, 5*time.Minute)))
}

func (c *sconn) removeStream(st *stream, completed bool) {
	c.mu.Lock()
	if c.streams[st.cid] == st {
		delete(c.streams, st.cid)
		c.active--
		if completed {
			c.completed++
		}
		if c.active == 0 {
			c.armIdle()
		}
	}
	c.mu.Unlock()
}

func (c *sconn) onSettings(f *http2.SettingsFrame) http2.ErrCode {
	grown, ctrl, code := c.applySettings(f)
	if code != http2.ErrCodeNo {
		return code
	}
	c.sendMore(grown)
	if ctrl > orInt(c.srv.MaxControlFrames, 1000) {
		return http2.ErrCodeEnhanceYourCalm
	}
	return http2.ErrCodeNo
}

func (c *sconn) onWindowUpdate(f *http2.WindowUpdateFrame) http2.ErrCode {
	if f.StreamID == 0 {
		return c.onConnWindow(int64(f.Increment))
	}
	st := c.get(f.StreamID)
	if st == nil {
		if f.StreamID > c.lastSeen() {
			return http2.ErrCodeProtocol // an idle stream
		}
		return http2.ErrCodeNo
	}
	c.onStreamWindow(st, f.StreamID, int64(f.Increment))
	return http2.ErrCodeNo
}

func (c *sconn) onReset(f *http2.RSTStreamFrame) http2.ErrCode {
	st := c.get(f.StreamID)
	c.mu.Lock()
	if f.StreamID > c.maxSeen {
		c.mu.Unlock()
		return http2.ErrCodeProtocol
	}
	c.resets++
	calm := c.resets >= orInt(c.srv.MaxResets, 100) && c.resets > 2*c.completed
	c.mu.Unlock()
	if st != nil {
		st.mu.Lock()
		st.clientGone = true
		st.finish(ErrClientReset, http2.ErrCodeCancel, &c.wk)
		st.mu.Unlock()
	}
	if calm {
		return http2.ErrCodeEnhanceYourCalm
	}
	return http2.ErrCodeNo
}

func (c *sconn) onData(f *http2.DataFrame) http2.ErrCode {
	n := int32(f.Length)
	if !c.takeData(n) {
		return http2.ErrCodeFlowControl
	}
	st := c.get(f.StreamID)
	if st == nil {
		if f.StreamID > c.lastSeen() {
			return http2.ErrCodeProtocol // an idle stream
		}
		c.discard(n)
		return http2.ErrCodeNo
	}
	wk := &c.wk
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		c.discard(n)
		return http2.ErrCodeNo
	}
	if st.reqEnd {
		st.reqCredited -= int64(n) // finish gives it back
		st.finish(ErrStreamProtocol, http2.ErrCodeStreamClosed, wk)
		return http2.ErrCodeNo
	}
	st.reqAvail -= n
	if st.reqAvail < 0 {
		st.reqCredited -= int64(n)
		st.finish(ErrStreamProtocol, http2.ErrCodeFlowControl, wk)
		return http2.ErrCodeNo
	}
	data := f.Data()
	if pad := n - int32(len(data)); pad > 0 {
		st.creditClient(pad, wk)
	}
	st.got += int64(len(data))
	if st.declared >= 0 && (st.got > st.declared || f.StreamEnded() && st.got != st.declared) {
		// RFC 9113 8.1.1: a body that disagrees with content-length.
		st.reqCredited -= int64(len(data))
		st.finish(ErrStreamProtocol, http2.ErrCodeProtocol, wk)
		return http2.ErrCodeNo
	}
	st.onReqData(data, f.StreamEnded(), wk)
	return http2.ErrCodeNo
}

func (c *sconn) onHeaders(f *http2.MetaHeadersFrame) http2.ErrCode {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ErrCodeProtocol
	}
	if st := c.get(id); st != nil {
		// Trailers.
		st.mu.Lock()
		defer st.mu.Unlock()
		if st.reqEnd {
			st.finish(ErrStreamProtocol, http2.ErrCodeStreamClosed, &c.wk)
			return http2.ErrCodeNo
		}
		if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
			st.finish(ErrStreamProtocol, http2.ErrCodeProtocol, &c.wk)
			return http2.ErrCodeNo
		}
		if st.kind == kindUpstream && !st.done {
			st.reqTrailers = append([]hpack.HeaderField(nil), f.RegularFields()...)
		}
		st.onReqData(nil, true, &c.wk)
		return http2.ErrCodeNo
	}
	c.mu.Lock()
	if id <= c.maxSeen {
		c.mu.Unlock()
		return http2.ErrCodeNo // a stream already closed (we reset it)
	}
	c.maxSeen = id
	refuse := c.draining || uint32(c.active) >= c.srv.maxStreams()
	c.mu.Unlock()
	if refuse {
		c.lock()
		c.rst(id, http2.ErrCodeRefusedStream)
		c.unlock()
		c.wk.mark(&c.wconn)
		return http2.ErrCodeNo
	}
	var route Route
	r := &c.req
	*r = Request{
		Method:        f.PseudoValue("method"),
		Scheme:        f.PseudoValue("scheme"),
		Authority:     f.PseudoValue("authority"),
		Path:          f.PseudoValue("path"),
		Header:        f.RegularFields(),
		EndStream:     f.StreamEnded(),
		ContentLength: -1,
		Remote:        c.remote,
	}
	if r.Method == "" || (r.Method != "CONNECT" && (r.Path == "" || r.Scheme == "")) {
		c.lock()
		c.rst(id, http2.ErrCodeProtocol)
		c.unlock()
		c.wk.mark(&c.wconn)
		return http2.ErrCodeNo
	}
	if !validRequestFields(r.Header) {
		c.lock()
		c.rst(id, http2.ErrCodeProtocol)
		c.unlock()
		c.wk.mark(&c.wconn)
		return http2.ErrCodeNo
	}
	if cl := r.Get("content-length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 || (r.EndStream && n != 0) {
			c.lock()
			c.rst(id, http2.ErrCodeProtocol)
			c.unlock()
			c.wk.mark(&c.wconn)
			return http2.ErrCodeNo
		}
		r.ContentLength = n
	}
	if f.Truncated {
		route.Local = &Response{Status: 431}
	} else {
		route = c.srv.Handler.Open(r)
	}
	st := &stream{sc: c, cid: id, reqEnd: f.StreamEnded(), declared: r.ContentLength}
	st.win[toClient] = int64(c.peerInit)
	st.reqAvail = c.srv.streamWin()
	if st.reqAvail < defaultWindow {
		st.reqAvail = defaultWindow // before our SETTINGS is acknowledged
	}
	c.mu.Lock()
	c.streams[id] = st
	c.active++
	if c.idleArmed {
		c.idleArmed = false
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
	wk := &c.wk
	st.mu.Lock()
	defer st.mu.Unlock()
	st.obs = route.Observer
	if !route.Deadline.IsZero() {
		st.timer = time.AfterFunc(time.Until(route.Deadline), st.onDeadline)
	}
	switch {
	case route.Upstream != nil:
		st.kind = kindUpstream
		st.method, st.scheme, st.path = r.Method, r.Scheme, r.Path
		st.authority = r.Authority
		if route.Authority != "" {
			st.authority = route.Authority
		}
		h := route.Header
		if h == nil {
			h = r.Header
		}
		st.hdr = append(make([]hpack.HeaderField, 0, len(h)), h...)
		st.retryBuf = route.RetryBuffer
		st.noRetry = route.RetryBuffer <= 0
		st.maxBody = route.MaxRequestBody
		if st.maxBody > 0 && r.ContentLength > st.maxBody {
			st.tooLarge = true
			st.noRetry = true
			st.failAttempt(ErrRequestTooLarge, wk)
			return http2.ErrCodeNo
		}
		st.attempt(route.Upstream, route.ResponseHeader, wk)
	case route.Serve != nil:
		st.kind = kindServe
		st.cond = sync.NewCond(&st.mu)
		go st.runServe(route.Serve)
	default:
		st.kind = kindLocal
		resp := route.Local
		if resp == nil {
			resp = &Response{Status: 500}
		}
		st.answer(resp, wk)
	}
	return http2.ErrCodeNo
}

// validRequestFields rejects what RFC 9113 8.2.2 calls malformed: fields
// of HTTP/1.1 connection management, and te other than "trailers".
func validRequestFields(h []hpack.HeaderField) bool {
	for i := range h {
		switch h[i].Name {
		case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			return false
		case "te":
			if h[i].Value != "trailers" {
				return false
			}
		}
	}
	return true
}
