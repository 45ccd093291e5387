package proxy

import (
	"net"
	"sync/atomic"
	"time"
)

// lazyDeadlineConn is an upstream connection whose deadlines are moved
// only when they must be. fasthttp sets a write and a read deadline on the
// connection for every request (the request's deadline); each is a clock
// read and a runtime timer update. A deadline a little later than asked
// is harmless, so when the one in force is at most slack later than the
// one asked for, it is kept; when it must move, it is set slack later than
// asked, so the requests of the next slack period keep it too. nginx
// treats its timers the same way (a change under 300 ms is not made).
// A timed-out request therefore fails at most slack after its deadline;
// slack is a small fraction of the model's timeout (upstream.slack).
type lazyDeadlineConn struct {
	net.Conn
	slack       *atomic.Int64 // nanoseconds, the upstream's
	read, write time.Time     // the deadlines in force; zero for none
}

func (c *lazyDeadlineConn) SetReadDeadline(t time.Time) error {
	return c.move(&c.read, t, c.Conn.SetReadDeadline)
}

func (c *lazyDeadlineConn) SetWriteDeadline(t time.Time) error {
	return c.move(&c.write, t, c.Conn.SetWriteDeadline)
}

func (c *lazyDeadlineConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// move sets the deadline cur to t (with slack) unless the one in force
// already is no earlier than t and at most slack later.
func (c *lazyDeadlineConn) move(cur *time.Time, t time.Time, set func(time.Time) error) error {
	if t.IsZero() {
		if cur.IsZero() {
			return nil
		}
		*cur = time.Time{}
		return set(t)
	}
	slack := time.Duration(c.slack.Load())
	if !cur.IsZero() && !cur.Before(t) && cur.Sub(t) <= slack {
		return nil
	}
	t = t.Add(slack)
	if err := set(t); err != nil {
		*cur = time.Time{} // unknown: set it next time
		return err
	}
	*cur = t
	return nil
}
