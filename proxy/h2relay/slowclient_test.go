package h2relay

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
)

// TestStalledClientDoesNotStallOthers: client A's stream gets an endless
// answer that A never reads, through the same upstream connection as
// client B's unary calls. B's calls must all complete while A is still
// connected, not once A is dropped after WriteTimeout.
// startFlood serves a backend whose /svc/Flood answer never ends and
// /svc/ anything else echoes, behind a relay with writeTimeout, and opens
// client A's flood stream with wide-open windows; A never reads. It
// returns once the flood stream was routed.
func startFlood(t *testing.T, writeTimeout time.Duration) (r *relay, pool *Pool, be string, flood *recObserver, a *rawClient) {
	t.Helper()
	be = startBackend(t, func(method string, ss grpc.ServerStream) error {
		var m []byte
		if err := ss.RecvMsg(&m); err != nil {
			return err
		}
		if method != "/svc/Flood" {
			return ss.SendMsg(m)
		}
		chunk := make([]byte, 64<<10)
		for {
			if err := ss.SendMsg(chunk); err != nil {
				return err
			}
		}
	})
	var obs atomic.Pointer[recObserver]
	r, pool = relayWith(t, &Server{WriteTimeout: writeTimeout}, PoolOptions{}, func(p *Pool, req *Request) Route {
		rt := Route{Upstream: p.Upstream(be)}
		if req.Path == "/svc/Flood" {
			o := newRec()
			obs.Store(o)
			rt.Observer = o
		}
		return rt
	})
	a = dialRaw(t, r.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	if err := a.fr.WriteWindowUpdate(0, 1<<31-1-65535); err != nil {
		t.Fatal(err)
	}
	if err := a.headers(1, false, withPath("/svc/Flood")...); err != nil {
		t.Fatal(err)
	}
	if err := a.fr.WriteData(1, true, grpcFrame([]byte("go"))); err != nil {
		t.Fatal(err)
	}
	for obs.Load() == nil {
		time.Sleep(time.Millisecond)
	}
	return r, pool, be, obs.Load(), a
}

func TestStalledClientDoesNotStallOthers(t *testing.T) {
	r, pool, be, o, a := startFlood(t, 2*time.Second)
	// A is stalled once the relay stops taking its answer: what the
	// upstream sent no longer grows.
	for last := -1; ; {
		time.Sleep(50 * time.Millisecond)
		o.mu.Lock()
		n := o.respBytes
		o.mu.Unlock()
		if n == last && n > 0 {
			break
		}
		last = n
	}

	cc := dialGRPC(t, r.addr)
	for i := range 20 {
		out, err := unary(ctxT2(t), cc, "/svc/Unary", []byte("hi"))
		if err != nil || string(out) != "hi" {
			t.Fatalf("call %d: %q %v", i, out, err)
		}
	}
	select {
	case <-o.done:
		t.Fatalf("the stalled client was dropped before the other client's calls completed: %+v", *o.outcome)
	default:
	}
	u := pool.Upstream(be)
	u.mu.Lock()
	n := len(u.conns)
	u.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d upstream connections, want the one both clients share", n)
	}
	_ = a.c.Close()
	o.wait(t)
}

// TestStalledClientPendingCap: a client that never reads but keeps
// asking for answers (PINGs here) is dropped once what waits for it
// passes the cap, long before WriteTimeout.
func TestStalledClientPendingCap(t *testing.T) {
	r, _ := relayWith(t, &Server{WriteTimeout: time.Minute, MaxControlFrames: 1 << 30}, PoolOptions{}, func(p *Pool, req *Request) Route {
		return Route{Local: &Response{Status: 204}}
	})
	// No small SO_RCVBUF here: set after the handshake, it makes the
	// client's kernel drop the relay's segments and, with them, the
	// acknowledgements of its own, stalling its writes whatever the relay
	// does.
	a := dialRaw(t, r.addr)
	_ = a.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	var data [8]byte
	var err error
	for err == nil {
		err = a.fr.WritePing(false, data)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the relay neither read on nor dropped the client: %v\n%s", err, stacks())
	}
}
