package h2relay

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	defaultWindow   = 65535
	defaultMaxFrame = 16384
	maxWindow       = 1<<31 - 1
)

// wconn is the writing half of a connection, either side: frames are
// written into a buffered writer under wmu and flushed by whichever
// goroutine wrote, once it has no more input to process (worker.flush).
// The flow-control send windows toward the peer, the connection's and
// every stream's (stream.win[side]), are guarded by wmu too.
type wconn struct {
	nc       net.Conn
	side     uint8 // toClient or toUpstream: the index of stream.win and stream.blocked
	wmu      sync.Mutex
	bw       *bufio.Writer
	henc     *hpack.Encoder
	hbuf     bytes.Buffer
	wto      time.Duration
	wdl      time.Time // write deadline currently set
	dead     bool      // a write failed; the conn is closed
	sendWin  int64     // connection send window
	peerInit int32     // peer's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxF int       // peer's SETTINGS_MAX_FRAME_SIZE
	blocked  []*stream // streams waiting for the connection window
	credit   int32     // bytes consumed, not yet given back with a conn WINDOW_UPDATE
	creditAt int32     // threshold for giving them back
	ctrl     int       // control frames answered since the last flush
	// sk, on a client connection, takes what bw flushes without ever
	// blocking the goroutine that flushes (sink); nil toward upstreams.
	sk *sink
	// recvAvail is what the peer may still send on the connection.
	recvAvail atomic.Int64
}

// The two sides of a stream, indexes of its windows (stream.win).
const (
	toClient   = 0
	toUpstream = 1
)

func (w *wconn) init(nc net.Conn, side uint8, wto time.Duration, connWin int32) {
	w.nc = nc
	w.side = side
	w.bw = bufio.NewWriterSize(nc, 32<<10)
	w.henc = hpack.NewEncoder(&w.hbuf)
	w.wto = wto
	w.sendWin = defaultWindow
	w.peerInit = defaultWindow
	w.peerMaxF = defaultMaxFrame
	w.creditAt = connWin / 4
}

func (w *wconn) lock() { w.wmu.Lock() }

// nonBlocking makes the connection's writes go through a sink: none
// waits for the peer. resume is called when the sink's slow-path writer
// caught up, to let the streams it held (push) send again. Before any
// write.
func (w *wconn) nonBlocking(resume func()) {
	w.sk = &sink{}
	w.sk.init(w, w.nc, resume)
	w.bw.Reset(w.sk)
}

// held says DATA toward the peer waits: the sink's slow-path writer has
// not caught up. wmu held.
func (w *wconn) held() bool { return w.sk != nil && w.sk.slow.Load() }

// deadline makes sure a write deadline at least wto/2 away is set before
// the buffer goes to the network (a flush, or a write larger than the
// room left); a sink sets its own. wmu held.
func (w *wconn) deadline() {
	if w.sk != nil {
		return
	}
	now := time.Now()
	if now.Add(w.wto / 2).After(w.wdl) {
		w.wdl = now.Add(w.wto)
		_ = w.nc.SetWriteDeadline(w.wdl)
	}
}

func (w *wconn) unlock() { w.wmu.Unlock() }

// flush writes out what is buffered; a failed (timed out) write closes
// the connection, whose reader then cleans up.
func (w *wconn) flush() {
	w.lock()
	if !w.dead && w.bw.Buffered() > 0 {
		w.deadline()
		if err := w.bw.Flush(); err != nil {
			w.fail()
		}
	}
	w.ctrl = 0
	w.unlock()
}

func (w *wconn) fail() {
	w.dead = true
	_ = w.nc.Close()
}

func (w *wconn) frameHeader(length int, t http2.FrameType, flags http2.Flags, id uint32) {
	b := w.small(9)
	b = append(b, byte(length>>16), byte(length>>8), byte(length), byte(t), byte(flags))
	w.put(binary.BigEndian.AppendUint32(b, id))
}

// small returns room for n bytes in the writer's own buffer (flushing it
// when full), so that short frame parts are written without allocating.
func (w *wconn) small(n int) []byte {
	if w.bw.Available() < n {
		w.deadline()
		if err := w.bw.Flush(); err != nil && !w.dead {
			w.fail()
		}
	}
	return w.bw.AvailableBuffer()
}

func (w *wconn) put(b []byte) {
	if _, err := w.bw.Write(b); err != nil && !w.dead {
		w.fail()
	}
}

func (w *wconn) write(p []byte) {
	if len(p) > w.bw.Available() {
		w.deadline()
	}
	if _, err := w.bw.Write(p); err != nil && !w.dead {
		w.fail()
	}
}

func (w *wconn) data(id uint32, end bool, p []byte) {
	var fl http2.Flags
	if end {
		fl = http2.FlagDataEndStream
	}
	w.frameHeader(len(p), http2.FrameData, fl, id)
	w.write(p)
}

func (w *wconn) rst(id uint32, code http2.ErrCode) {
	w.frameHeader(4, http2.FrameRSTStream, 0, id)
	w.put(binary.BigEndian.AppendUint32(w.small(4), uint32(code)))
}

func (w *wconn) windowUpdate(id uint32, n uint32) {
	w.frameHeader(4, http2.FrameWindowUpdate, 0, id)
	w.put(binary.BigEndian.AppendUint32(w.small(4), n))
}

func (w *wconn) goAway(last uint32, code http2.ErrCode) {
	w.frameHeader(8, http2.FrameGoAway, 0, 0)
	var b [8]byte
	binary.BigEndian.PutUint32(b[:], last)
	binary.BigEndian.PutUint32(b[4:], uint32(code))
	w.write(b[:])
}

func (w *wconn) ping(ack bool, data [8]byte) {
	var fl http2.Flags
	if ack {
		fl = http2.FlagPingAck
	}
	w.frameHeader(8, http2.FramePing, fl, 0)
	w.write(data[:])
}

func (w *wconn) settings(ack bool, s ...http2.Setting) {
	var fl http2.Flags
	if ack {
		fl = http2.FlagSettingsAck
	}
	w.frameHeader(6*len(s), http2.FrameSettings, fl, 0)
	for _, x := range s {
		var b [6]byte
		binary.BigEndian.PutUint16(b[:], uint16(x.ID))
		binary.BigEndian.PutUint32(b[2:], x.Val)
		w.write(b[:])
	}
}

// field adds one field to the header block being built in hbuf.
func (w *wconn) field(name, value string) {
	_ = w.henc.WriteField(hpack.HeaderField{Name: name, Value: value})
}

// headerBlock writes the block in hbuf as HEADERS (+ CONTINUATION) frames.
func (w *wconn) headerBlock(id uint32, end bool) {
	b := w.hbuf.Bytes()
	first := true
	for {
		n := len(b)
		if n > w.peerMaxF {
			n = w.peerMaxF
		}
		var fl http2.Flags
		if n == len(b) {
			fl |= http2.FlagHeadersEndHeaders
		}
		t := http2.FrameContinuation
		if first {
			t = http2.FrameHeaders
			if end {
				fl |= http2.FlagHeadersEndStream
			}
		}
		w.frameHeader(n, t, fl, id)
		w.write(b[:n])
		b = b[n:]
		first = false
		if len(b) == 0 {
			break
		}
	}
	w.hbuf.Reset()
}

// endStream ends stream id with trailers, or an empty DATA frame when
// there are none.
func (w *wconn) endStream(id uint32, trailers []hpack.HeaderField) {
	w.lock()
	if trailers != nil {
		for _, f := range trailers {
			_ = w.henc.WriteField(f)
		}
		w.headerBlock(id, true)
	} else {
		w.data(id, true, nil)
	}
	w.unlock()
}

// giveBack counts n bytes of DATA consumed on the connection and sends a
// connection WINDOW_UPDATE once enough accumulated. wmu held.
func (w *wconn) giveBack(n int32) {
	if n <= 0 {
		return
	}
	w.credit += n
	if w.credit >= w.creditAt {
		w.windowUpdate(0, uint32(w.credit))
		w.recvAvail.Add(int64(w.credit))
		w.credit = 0
	}
}

// worker is what a goroutine that writes frames carries: the connections
// it left unflushed.
type worker struct {
	dirty []*wconn
}

func (wk *worker) mark(c *wconn) {
	for _, d := range wk.dirty {
		if d == c {
			return
		}
	}
	wk.dirty = append(wk.dirty, c)
}

func (wk *worker) flush() {
	for i, c := range wk.dirty {
		c.flush()
		wk.dirty[i] = nil
	}
	wk.dirty = wk.dirty[:0]
}

var workerPool = sync.Pool{New: func() any { return new(worker) }}

func getWorker() *worker { return workerPool.Get().(*worker) }
func putWorker(w *worker) {
	w.flush()
	workerPool.Put(w)
}

// statusText holds ":status" values so that encoding them allocates nothing.
var statusText [600]string

func init() {
	for i := 100; i < 600; i++ {
		statusText[i] = strconv.Itoa(i)
	}
}

func statusString(s int) string {
	if s >= 100 && s < 600 {
		return statusText[s]
	}
	return strconv.Itoa(s)
}

// buffers for queued DATA.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func getBuf() []byte { return (*bufPool.Get().(*[]byte))[:0] }
func putBuf(b []byte) {
	if cap(b) == 0 || cap(b) > 1<<20 {
		return
	}
	putBufSlow(b[:0])
}

func putBufSlow(b []byte) { bufPool.Put(&b) }
