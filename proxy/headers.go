package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// Header names of the contract.
const (
	HeaderVersion   = "X-Vane-Version"
	HeaderRequestID = "X-Request-Id"
)

// Canonical forms of the field names the request path reads and writes.
// fasthttp canonicalises names as it parses; looking these up with
// PeekCanonical/SetCanonical skips copying, checking and canonicalising
// the key again on every call, which Peek/Set do (~10 % of the
// instructions of a request before this).
var (
	keyRequestID    = []byte(HeaderRequestID)
	keyVersion      = []byte(HeaderVersion)
	keyForwardedFor = []byte("X-Forwarded-For")
	keyForwardedPro = []byte("X-Forwarded-Proto")
	keyForwardedHst = []byte("X-Forwarded-Host")
	keyAccept       = []byte("Accept")
	keyInferenceLen = []byte(headerInferenceLen)
	valueHTTP       = []byte("http")
)

// canonicalKey is name in fasthttp's canonical form: the first letter and
// each one after a '-' upper case, the others lower case. Config-supplied
// names (the sticky header) are canonicalised once, at config build.
func canonicalKey(name string) []byte {
	b := []byte(name)
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case !upper && 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
	return b
}

// hopHeaders are the hop-by-hop fields of RFC 9110 §7.6.1 (plus the
// de-facto Proxy-Connection and Keep-Alive) that a proxy must not forward.
// fasthttp writes its own Connection and Transfer-Encoding framing, so
// removing them here only drops what the peer sent.
var hopHeaders = [...]string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// hopKeys are hopHeaders as byte slices, for PeekCanonical.
var hopKeys = func() (k [len(hopHeaders)][]byte) {
	for i, h := range hopHeaders {
		k[i] = []byte(h)
	}
	return k
}()

// fields is what fasthttp's request and response headers share.
type fields interface {
	PeekCanonical(key []byte) []byte
	Del(key string)
	DelBytes(key []byte)
}

// removeHopHeaders deletes the hop-by-hop fields and every field that the
// Connection header names. It looks each name up with PeekCanonical (names
// are canonical since fasthttp parsed them) and deletes only those present
// — usually none, or a keep-alive answer's Connection — where nine
// unconditional Del calls each copied and canonicalised its key before
// scanning the fields (~3 % of the request path's CPU). Walking the fields
// once with All() would be fewer comparisons, but its closures escape
// through the interface and allocated twice per call. It allocates
// nothing unless Connection names more than four fields.
func removeHopHeaders(h fields) {
	var present uint16 // bit i: hopHeaders[i] is present
	for i, k := range hopKeys {
		if len(h.PeekCanonical(k)) > 0 {
			present |= 1 << i
		}
	}
	if present == 0 {
		return
	}
	if present&1 != 0 { // hopHeaders[0] is Connection
		var named [4][]byte // fields Connection names, beyond keep-alive/close
		n := 0
		for v := h.PeekCanonical(hopKeys[0]); len(v) > 0; {
			var tok []byte
			if j := bytes.IndexByte(v, ','); j >= 0 {
				tok, v = v[:j], v[j+1:]
			} else {
				tok, v = v, nil
			}
			tok = bytes.TrimSpace(tok)
			if len(tok) == 0 || bytes.EqualFold(tok, []byte("close")) || bytes.EqualFold(tok, []byte("keep-alive")) {
				continue
			}
			if n == len(named) {
				// Deleting moves fields around but never writes into
				// their values, so the tokens, which point into
				// Connection's value, stay intact; flush and go on.
				for _, t := range named[:n] {
					h.DelBytes(t)
				}
				n = 0
			}
			named[n] = tok
			n++
		}
		for _, t := range named[:n] {
			h.DelBytes(t)
		}
	}
	for i, k := range hopHeaders {
		if present&(1<<i) != 0 {
			h.Del(k)
		}
	}
}

// setForwarded appends the client address to X-Forwarded-For and sets
// X-Forwarded-Proto and X-Forwarded-Host, as httputil.ReverseProxy does.
func setForwarded(req *fasthttp.Request, clientIP netip.Addr, buf []byte) []byte {
	h := &req.Header
	buf = buf[:0]
	if prior := h.PeekCanonical(keyForwardedFor); len(prior) > 0 {
		buf = append(buf, prior...)
		buf = append(buf, ", "...)
	}
	if clientIP.IsValid() {
		buf = clientIP.AppendTo(buf)
	} else {
		buf = append(buf, "unknown"...)
	}
	h.SetCanonical(keyForwardedFor, buf)
	if len(h.PeekCanonical(keyForwardedPro)) == 0 {
		h.SetCanonical(keyForwardedPro, valueHTTP)
	}
	if len(h.PeekCanonical(keyForwardedHst)) == 0 {
		h.SetCanonical(keyForwardedHst, h.Host())
	}
	return buf
}

// requestIDs generates request ids: a random per-process prefix and a
// counter, so ids are unique without a syscall per request.
type requestIDs struct {
	prefix [8]byte
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var g requestIDs
	if _, err := rand.Read(g.prefix[:]); err != nil {
		// crypto/rand does not fail on supported platforms; a fixed prefix
		// would still give ids unique within this process.
		copy(g.prefix[:], "vanevane")
	}
	return &g
}

// appendNext appends a fresh 32-hex-digit id to dst.
func (g *requestIDs) appendNext(dst []byte) []byte {
	var raw [16]byte
	copy(raw[:8], g.prefix[:])
	binary.BigEndian.PutUint64(raw[8:], g.n.Add(1))
	return hex.AppendEncode(dst, raw[:])
}
