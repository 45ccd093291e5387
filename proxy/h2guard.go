package proxy

import (
	"encoding/binary"
	"net"
	"sync/atomic"
)

// HTTP/2 abuse limits of one client connection.
const (
	// h2MaxStreams caps the concurrent streams of one h2c connection
	// (SETTINGS_MAX_CONCURRENT_STREAMS; x/net's default is 250).
	h2MaxStreams = 100
	// A connection whose client has reset at least h2ResetMin streams, and
	// more than h2ResetRatio times as many as it let complete, is closed:
	// the "rapid reset" attack (CVE-2023-44487) costs the server a handler
	// per stream and the client nothing.
	h2ResetMin   = 100
	h2ResetRatio = 2
)

// h2Guard counts the HEADERS and RST_STREAM frames a client sends on an
// h2c connection by scanning the frame headers as they are read (the
// payloads are skipped, never copied), and closes the connection when the
// client resets far more streams than it completes.
type h2Guard struct {
	net.Conn
	// preface bytes still to skip before the first frame header.
	preface int
	// hdr collects a frame header split across reads; n bytes of it so far.
	hdr [9]byte
	n   int
	// skip is how many payload bytes of the current frame are left.
	skip int
	// headers and resets count the client's frames. Only the goroutine
	// that reads the connection writes them.
	headers, resets int
	// tripped is set once the connection was closed for resets.
	tripped atomic.Bool
	onTrip  func(headers, resets int)
}

func newH2Guard(c net.Conn, onTrip func(headers, resets int)) *h2Guard {
	return &h2Guard{Conn: c, preface: len(h2Preface), onTrip: onTrip}
}

func (g *h2Guard) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	if n > 0 && g.scan(p[:n]) {
		if !g.tripped.Swap(true) {
			if g.onTrip != nil {
				g.onTrip(g.headers, g.resets)
			}
			_ = g.Conn.Close()
		}
		return 0, net.ErrClosed
	}
	return n, err
}

// scan walks the frame headers in b; true when the connection must close.
func (g *h2Guard) scan(b []byte) bool {
	for len(b) > 0 {
		switch {
		case g.preface > 0:
			k := min(g.preface, len(b))
			g.preface -= k
			b = b[k:]
		case g.skip > 0:
			k := min(g.skip, len(b))
			g.skip -= k
			b = b[k:]
		default:
			k := copy(g.hdr[g.n:], b)
			g.n += k
			b = b[k:]
			if g.n < len(g.hdr) {
				return false
			}
			g.n = 0
			g.skip = int(binary.BigEndian.Uint32(g.hdr[:4]) >> 8) // 24-bit length
			switch g.hdr[3] {                                     // type
			case 0x1: // HEADERS
				g.headers++
			case 0x3: // RST_STREAM
				g.resets++
				if g.resets >= h2ResetMin && g.resets > h2ResetRatio*max(g.headers-g.resets, 0) {
					return true
				}
			}
		}
	}
	return false
}
