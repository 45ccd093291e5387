package h2relay

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// PoolOptions configures a Pool; zero fields take the defaults named.
type PoolOptions struct {
	// DialTimeout bounds a connect and the wait for the upstream's
	// SETTINGS (5 s).
	DialTimeout time.Duration
	// IdleTimeout closes a connection without streams (90 s).
	IdleTimeout time.Duration
	// ReadIdleTimeout sends a PING on a connection silent that long
	// (30 s); PingTimeout closes it when the PING is not answered (15 s).
	ReadIdleTimeout, PingTimeout time.Duration
	// WriteTimeout bounds one write to an upstream (10 s).
	WriteTimeout time.Duration
	// StreamWindow is the receive window per upstream stream, the most
	// response body held for one (256 KiB); ConnWindow per connection
	// (4 MiB).
	StreamWindow, ConnWindow int32
	// MaxHeaderListSize caps a response header block (1 MiB).
	MaxHeaderListSize uint32
	// Dial replaces net.Dialer.DialContext("tcp", addr).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// Pool holds h2c connections to upstreams, one Upstream handle per
// address.
type Pool struct {
	opt  PoolOptions
	mu   sync.Mutex
	ups  map[string]*Upstream
	stop chan struct{}
	once sync.Once
}

// NewPool starts a pool (and its janitor goroutine: Close stops it).
func NewPool(o PoolOptions) *Pool {
	o.DialTimeout = orDur(o.DialTimeout, 5*time.Second)
	o.IdleTimeout = orDur(o.IdleTimeout, 90*time.Second)
	o.ReadIdleTimeout = orDur(o.ReadIdleTimeout, 30*time.Second)
	o.PingTimeout = orDur(o.PingTimeout, 15*time.Second)
	o.WriteTimeout = orDur(o.WriteTimeout, 10*time.Second)
	if o.StreamWindow <= 0 {
		o.StreamWindow = 256 << 10
	}
	if o.ConnWindow <= 0 {
		o.ConnWindow = 4 << 20
	}
	o.ConnWindow = max(o.ConnWindow, defaultWindow)
	if o.MaxHeaderListSize == 0 {
		o.MaxHeaderListSize = 1 << 20
	}
	if o.Dial == nil {
		var d net.Dialer
		o.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	p := &Pool{opt: o, ups: make(map[string]*Upstream), stop: make(chan struct{})}
	go p.janitor()
	return p
}

// Upstream returns the pool's handle for addr (host:port), the same one
// on every call until it is closed.
func (p *Pool) Upstream(addr string) *Upstream {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.ups[addr]
	if u == nil {
		u = &Upstream{pool: p, addr: addr}
		p.ups[addr] = u
	}
	return u
}

// Close stops the pool and closes every connection, live streams
// included.
func (p *Pool) Close() {
	p.once.Do(func() { close(p.stop) })
	p.mu.Lock()
	ups := make([]*Upstream, 0, len(p.ups))
	for _, u := range p.ups {
		ups = append(ups, u)
	}
	p.ups = map[string]*Upstream{}
	p.mu.Unlock()
	for _, u := range ups {
		u.mu.Lock()
		u.closed = true
		conns := append([]*uconn(nil), u.conns...)
		u.mu.Unlock()
		for _, c := range conns {
			_ = c.nc.Close()
		}
	}
}

func (p *Pool) janitor() {
	tick := min(time.Second, p.opt.IdleTimeout/2, p.opt.ReadIdleTimeout/2, p.opt.PingTimeout/2)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.mu.Lock()
			ups := make([]*Upstream, 0, len(p.ups))
			for _, u := range p.ups {
				ups = append(ups, u)
			}
			p.mu.Unlock()
			for _, u := range ups {
				u.sweep(now)
			}
		}
	}
}

// Upstream is an h2c upstream address and its connections.
type Upstream struct {
	pool *Pool
	addr string

	mu      sync.Mutex
	conns   []*uconn
	dialing int // dials and connections waiting for SETTINGS
	pending []*stream
	closed  bool
}

// Addr is the upstream's host:port.
func (u *Upstream) Addr() string { return u.addr }

// Close takes the handle out of its pool: idle connections are closed at
// once, the others when their streams are done; new streams fail with
// ErrUpstreamClosed.
func (u *Upstream) Close() {
	p := u.pool
	p.mu.Lock()
	if p.ups[u.addr] == u {
		delete(p.ups, u.addr)
	}
	p.mu.Unlock()
	u.mu.Lock()
	u.closed = true
	var idle []*uconn
	for _, c := range u.conns {
		if c.active == 0 {
			c.goaway = true
			idle = append(idle, c)
		}
	}
	u.mu.Unlock()
	for _, c := range idle {
		_ = c.nc.Close()
	}
}

// acquire gives st a stream on a connection with room, or queues it
// until a connection has room (dialing one). st.mu held.
func (u *Upstream) acquire(st *stream, wk *worker) error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return ErrUpstreamClosed
	}
	for _, c := range u.conns {
		if c.usable() {
			c.active++
			u.mu.Unlock()
			c.open(st, wk)
			return nil
		}
	}
	u.pending = append(u.pending, st)
	st.pendingOn = u
	if u.dialing == 0 || len(u.pending) > 100*u.dialing {
		u.dialing++
		go u.dial()
	}
	u.mu.Unlock()
	return nil
}

func (u *Upstream) removePending(st *stream) {
	u.mu.Lock()
	u.pending = without(u.pending, st)
	u.mu.Unlock()
}

func (u *Upstream) dial() {
	o := &u.pool.opt
	ctx, cancel := context.WithTimeout(context.Background(), o.DialTimeout)
	nc, err := o.Dial(ctx, u.addr)
	cancel()
	if err != nil {
		u.dialFailed(fmt.Errorf("%w %s: %w", ErrUpstreamConnect, u.addr, err))
		return
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c := &uconn{u: u, nextID: 1, maxStreams: 100}
	c.initConn(nc, toUpstream, o.WriteTimeout, o.ConnWindow, o.MaxHeaderListSize)
	c.lock()
	c.write([]byte(clientPreface))
	c.settings(false,
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(o.StreamWindow)},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: o.MaxHeaderListSize},
	)
	c.recvAvail.Store(int64(o.ConnWindow))
	if d := o.ConnWindow - defaultWindow; d > 0 {
		c.windowUpdate(0, uint32(d))
	}
	c.unlock()
	c.flush()
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		_ = nc.Close()
		u.dialFailed(ErrUpstreamClosed)
		return
	}
	u.conns = append(u.conns, c)
	u.mu.Unlock()
	c.readLoop()
}

// dialFailed fails the queued streams when no other dial may serve them.
func (u *Upstream) dialFailed(err error) {
	u.mu.Lock()
	u.dialing--
	var failed []*stream
	if u.dialing == 0 {
		failed = u.pending
		u.pending = nil
	}
	u.mu.Unlock()
	wk := getWorker()
	for _, st := range failed {
		st.mu.Lock()
		if st.pendingOn == u {
			st.pendingOn = nil
			st.failAttempt(err, wk)
		}
		st.mu.Unlock()
	}
	putWorker(wk)
}

func (u *Upstream) sweep(now time.Time) {
	o := &u.pool.opt
	u.mu.Lock()
	var idle, dead, ping []*uconn
	for _, c := range u.conns {
		if !c.ready {
			continue
		}
		if c.active == 0 && (u.closed || c.goaway || now.Sub(c.idleSince) > o.IdleTimeout) {
			c.goaway = true // no new streams while it closes
			idle = append(idle, c)
			continue
		}
		f := c.frames.Load()
		switch {
		case f != c.lastFrames:
			c.lastFrames, c.lastChange, c.pingOut = f, now, false
		case c.pingOut && now.Sub(c.pingAt) > o.PingTimeout:
			dead = append(dead, c)
		case !c.pingOut && now.Sub(c.lastChange) > o.ReadIdleTimeout:
			c.pingOut, c.pingAt = true, now
			ping = append(ping, c)
		}
	}
	u.mu.Unlock()
	for _, c := range idle {
		c.lock()
		c.goAway(0, http2.ErrCodeNo)
		c.unlock()
		c.flush()
		_ = c.nc.Close()
	}
	for _, c := range dead {
		_ = c.nc.Close()
	}
	for _, c := range ping {
		c.lock()
		c.ping(false, [8]byte{'v', 'a', 'n', 'e'})
		c.unlock()
		c.flush()
	}
}

// uconn is a connection to an upstream.
type uconn struct {
	hconn
	u *Upstream

	// guarded by u.mu
	ready      bool
	goaway     bool
	closed     bool
	active     int
	maxStreams uint32
	idleSince  time.Time
	lastFrames uint64
	lastChange time.Time
	pingOut    bool
	pingAt     time.Time

	frames atomic.Uint64 // frames read, for the read-idle PING

	nextID uint32        // guarded by hconn.mu
	lastID atomic.Uint32 // the last stream id taken, for usable
}

// usable: room for one more stream. u.mu held.
func (c *uconn) usable() bool {
	return c.ready && !c.goaway && !c.closed && uint32(c.active) < c.maxStreams && c.lastID.Load() < 1<<30 // far from 2^31 with up to 1000 slots reserved
}

// open starts st's attempt on c, whose slot is reserved. st.mu held.
func (c *uconn) open(st *stream, wk *worker) {
	if st.done || st.uc != nil {
		c.release(wk)
		return
	}
	st.pendingOn = nil
	c.lock()
	c.mu.Lock()
	id := c.nextID
	c.nextID += 2
	c.lastID.Store(id)
	c.streams[id] = st
	c.mu.Unlock()
	st.uc, st.uid = c, id
	st.win[toUpstream] = int64(c.peerInit)
	// Until it has our SETTINGS the upstream may use the default window.
	st.respAvail = max(c.u.pool.opt.StreamWindow, defaultWindow)
	st.upOwed = 0
	c.field(":method", st.method)
	c.field(":scheme", st.scheme)
	if st.authority != "" {
		c.field(":authority", st.authority)
	}
	c.field(":path", st.path)
	for _, f := range st.hdr {
		_ = c.henc.WriteField(f)
	}
	end := st.reqEnd && st.reqRecv == 0 && st.reqTrailers == nil
	c.headerBlock(id, end)
	c.unlock()
	wk.mark(&c.wconn)
	if end {
		st.reqEndSent = true
		return
	}
	st.tryFlushReq(wk)
}

func (c *uconn) removeStream(id uint32) {
	c.mu.Lock()
	delete(c.streams, id)
	c.mu.Unlock()
}

// release frees a stream slot and hands it to a queued stream.
func (c *uconn) release(wk *worker) {
	u := c.u
	u.mu.Lock()
	c.active--
	var next *stream
	if len(u.pending) > 0 && c.usable() {
		next = u.pending[0]
		copy(u.pending, u.pending[1:])
		u.pending[len(u.pending)-1] = nil
		u.pending = u.pending[:len(u.pending)-1]
		c.active++
	}
	closeIt := c.active == 0 && (c.goaway || u.closed) && !c.closed
	if c.active == 0 {
		c.idleSince = time.Now()
	}
	u.mu.Unlock()
	if next != nil {
		next.mu.Lock()
		if next.pendingOn == u {
			c.open(next, wk)
		} else {
			c.release(wk)
		}
		next.mu.Unlock()
	}
	if closeIt {
		c.flushClose()
	}
}

// flushClose closes c once what was written to it is out.
func (c *uconn) flushClose() {
	go func() {
		c.flush()
		_ = c.nc.Close()
	}()
}

func (c *uconn) readLoop() {
	o := &c.u.pool.opt
	wk := &c.wk
	defer c.lost()
	_ = c.nc.SetReadDeadline(time.Now().Add(o.DialTimeout))
	f, err := c.fr.ReadFrame()
	if err != nil {
		return
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		c.connError(http2.ErrCodeProtocol)
		return
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	if code := c.onSettings(sf); code != http2.ErrCodeNo {
		c.connError(code)
		return
	}
	c.becomeReady()
	for {
		if c.br.Buffered() == 0 {
			wk.flush()
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			if se, goOn := c.readFailed(err, 0); goOn {
				if st := c.get(se.StreamID); st != nil {
					st.mu.Lock()
					if st.uc == c {
						c.lock()
						c.rst(st.uid, se.Code)
						c.unlock()
						st.upReset = true
						st.upstreamBroke(ErrUpstreamProtocol, se.Code, wk)
					}
					st.mu.Unlock()
				}
				continue
			}
			return
		}
		c.frames.Add(1)
		code := http2.ErrCodeNo
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if st := c.get(f.StreamID); st != nil {
				st.mu.Lock()
				if st.uc == c && st.uid == f.StreamID {
					st.onRespHeaders(f, wk)
				}
				st.mu.Unlock()
			}
		case *http2.DataFrame:
			code = c.onData(f)
		case *http2.RSTStreamFrame:
			if st := c.get(f.StreamID); st != nil {
				st.mu.Lock()
				if st.uc == c && st.uid == f.StreamID {
					st.onRespReset(f.ErrCode, wk)
				}
				st.mu.Unlock()
			}
		case *http2.WindowUpdateFrame:
			code = c.onWindowUpdate(f)
		case *http2.SettingsFrame:
			if !f.IsAck() {
				code = c.onSettings(f)
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				c.pong(f.Data)
			}
		case *http2.GoAwayFrame:
			c.onGoAway(f.LastStreamID)
		case *http2.PushPromiseFrame:
			code = http2.ErrCodeProtocol
		}
		if code != http2.ErrCodeNo {
			c.connError(code)
			return
		}
	}
}

func (c *uconn) connError(code http2.ErrCode) {
	c.hconn.connError(0, code)
}

func (c *uconn) becomeReady() {
	u := c.u
	u.mu.Lock()
	c.ready = true
	c.idleSince = time.Now()
	c.lastChange = c.idleSince
	u.dialing--
	u.mu.Unlock()
	c.takePending()
}

// takePending opens queued streams on c while it has room, and dials
// another connection for those left.
func (c *uconn) takePending() {
	u := c.u
	u.mu.Lock()
	var take []*stream
	for len(u.pending) > 0 && c.usable() {
		take = append(take, u.pending[0])
		u.pending[0] = nil
		u.pending = u.pending[1:]
		c.active++
	}
	if len(u.pending) > 0 && u.dialing == 0 && c.maxStreams > 0 && !u.closed {
		u.dialing++
		go u.dial()
	}
	u.mu.Unlock()
	for _, st := range take {
		st.mu.Lock()
		if st.pendingOn == u {
			c.open(st, &c.wk)
		} else {
			c.release(&c.wk)
		}
		st.mu.Unlock()
	}
}

// lost cleans up after the reader: the attempts on c fail.
func (c *uconn) lost() {
	_ = c.nc.Close()
	u := c.u
	u.mu.Lock()
	wasReady := c.ready
	c.closed = true
	u.conns = without(u.conns, c)
	u.mu.Unlock()
	if !wasReady {
		u.dialFailed(fmt.Errorf("%w %s: no SETTINGS", ErrUpstreamConnect, u.addr))
	}
	c.mu.Lock()
	sts := make([]*stream, 0, len(c.streams))
	for _, st := range c.streams {
		sts = append(sts, st)
	}
	c.mu.Unlock()
	wk := &c.wk
	for _, st := range sts {
		st.mu.Lock()
		if st.uc == c {
			st.upReset = true
			st.upstreamBroke(ErrUpstreamLost, http2.ErrCodeInternal, wk)
		}
		st.mu.Unlock()
	}
	wk.flush()
}

func (c *uconn) onGoAway(last uint32) {
	u := c.u
	u.mu.Lock()
	c.goaway = true
	closeIt := c.active == 0
	u.mu.Unlock()
	c.mu.Lock()
	var sts []*stream
	for id, st := range c.streams {
		if id > last {
			sts = append(sts, st)
		}
	}
	c.mu.Unlock()
	for _, st := range sts {
		st.mu.Lock()
		if st.uc == c && st.uid > last {
			st.upReset = true // not processed: nothing to reset
			st.upstreamBroke(ErrGoAway, http2.ErrCodeRefusedStream, &c.wk)
		}
		st.mu.Unlock()
	}
	if closeIt {
		c.flushClose()
	}
}

func (c *uconn) onSettings(f *http2.SettingsFrame) http2.ErrCode {
	grown, _, code := c.applySettings(f)
	if code != http2.ErrCodeNo {
		return code
	}
	maxStreams, haveMax := uint32(0), false
	for i := range f.NumSettings() {
		if s := f.Setting(i); s.ID == http2.SettingMaxConcurrentStreams {
			maxStreams, haveMax = s.Val, true
		}
	}
	u := c.u
	u.mu.Lock()
	more := haveMax && c.ready && min(maxStreams, 1000) > c.maxStreams
	if haveMax {
		c.maxStreams = min(maxStreams, 1000)
	} else if !c.ready {
		c.maxStreams = 1000 // unlimited
	}
	u.mu.Unlock()
	if more {
		c.takePending()
	}
	c.sendMore(grown)
	return http2.ErrCodeNo
}

func (c *uconn) onWindowUpdate(f *http2.WindowUpdateFrame) http2.ErrCode {
	if f.StreamID == 0 {
		return c.onConnWindow(int64(f.Increment))
	}
	if st := c.get(f.StreamID); st != nil {
		c.onStreamWindow(st, f.StreamID, int64(f.Increment))
	}
	return http2.ErrCodeNo
}

func (c *uconn) onData(f *http2.DataFrame) http2.ErrCode {
	n := int32(f.Length)
	if !c.takeData(n) {
		return http2.ErrCodeFlowControl
	}
	st := c.get(f.StreamID)
	if st != nil {
		st.mu.Lock()
		if st.uc == c && st.uid == f.StreamID && !st.done {
			st.onRespData(f.Data(), n, f.StreamEnded(), &c.wk)
			st.mu.Unlock()
			return http2.ErrCodeNo
		}
		st.mu.Unlock()
	}
	c.discard(n)
	return http2.ErrCodeNo
}
