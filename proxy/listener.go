package proxy

import (
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
)

// h2Preface is the HTTP/2 client connection preface (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// sniff reads from c until the bytes either diverge from the HTTP/2 preface
// or match all of it. HTTP/1.x requests diverge within the first two bytes
// (no method starts "PR"), so a short HTTP/1.0 request never waits for
// bytes that will not come. The returned conn replays what was read.
func sniff(c net.Conn) (net.Conn, bool, error) {
	var buf [len(h2Preface)]byte
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if !strings.HasPrefix(h2Preface, string(buf[:n])) {
			return &prefixConn{Conn: c, prefix: buf[:n:n]}, false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
	return &prefixConn{Conn: c, prefix: buf[:n:n]}, true, nil
}

// prefixConn replays prefix before reading from the connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// SyscallConn is the underlying socket's, so that the h2c relay writes
// to it without blocking; the prefix concerns only reads.
func (c *prefixConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// chanListener is a net.Listener fed by the demultiplexer.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	// mu guards closed and the close of conns.
	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// deliver hands c to Accept; false when the listener is closed.
func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
