package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
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

// hopByLen lists, for each name length, the indexes in hopHeaders of the
// names of that length: most fields are ruled out by their length alone.
var hopByLen = func() (t [len("Proxy-Authorization") + 1][]int) {
	for i, h := range hopHeaders {
		t[len(h)] = append(t[len(h)], i)
	}
	return t
}()

// hopBit returns the bit of name in a set of hopHeaders, 0 when name is
// not hop-by-hop. Any case matches.
func hopBit(name []byte) uint16 {
	if len(name) >= len(hopByLen) {
		return 0
	}
	for _, i := range hopByLen[len(name)] {
		if bytes.EqualFold(name, []byte(hopHeaders[i])) {
			return 1 << i
		}
	}
	return 0
}

// The hop-by-hop fields are found in one pass over the fields and only
// those present are deleted: usually none, or a keep-alive answer's
// Connection. Nine unconditional Del calls, each copying and
// canonicalising its key and scanning every field, were ~3 % of the
// request path's CPU, and nine PeekCanonical calls per header set still
// ~2 %. The passes take the concrete header types: through an interface
// the iterator's closures escape and allocate on every call.

// newline ends each line of a raw header block.
var newline = []byte{'\n'}

// fieldName returns the name of one line of a raw header block, spaces
// trimmed; false when the line has no ':' after its first byte.
func fieldName(line []byte) ([]byte, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil, false
	}
	return bytes.TrimSpace(line[:i]), true
}

// removeHopRequest removes the hop-by-hop fields of a request fasthttp
// parsed. It scans the raw header block, as received: the parsed fields'
// iterator would also parse the Cookie header, which changes how it is
// forwarded.
func removeHopRequest(h *fasthttp.RequestHeader) {
	var present uint16
	raw := h.RawHeaders()
	for len(raw) > 0 {
		var line []byte
		line, raw, _ = bytes.Cut(raw, newline)
		if n, ok := fieldName(line); ok {
			present |= hopBit(n)
		}
	}
	if present != 0 {
		deleteHop(h, present)
	}
}

// removeHopResponse removes the hop-by-hop fields of an answer.
func removeHopResponse(h *fasthttp.ResponseHeader) {
	var present uint16
	for k := range h.All() {
		present |= hopBit(k)
	}
	if present != 0 {
		deleteHop(h, present)
	}
}

// hopKeyConnection is hopHeaders[0], Connection, for PeekCanonical.
var hopKeyConnection = []byte(hopHeaders[0])

// fields is what fasthttp's request and response headers share.
type fields interface {
	PeekCanonical(key []byte) []byte
	Del(key string)
	DelBytes(key []byte)
}

// deleteHop deletes the hop-by-hop fields in present and, when Connection
// is among them, every field it names beyond keep-alive and close.
func deleteHop(h fields, present uint16) {
	if present&1 != 0 { // hopHeaders[0] is Connection
		// Deleting moves fields around but never writes into their
		// values, so v, Connection's value, stays intact meanwhile.
		for v := h.PeekCanonical(hopKeyConnection); len(v) > 0; {
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
			h.DelBytes(tok)
		}
	}
	for i, k := range hopHeaders {
		if present&(1<<i) != 0 {
			h.Del(k)
		}
	}
}

// requestIDs generates request ids: a random per-process prefix and a
// counter, so ids are unique without a syscall per request. The prefix is
// hex-encoded once; only the counter's 16 digits are encoded per request.
type requestIDs struct {
	prefix [16]byte // hex of 8 random bytes
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		// crypto/rand does not fail on supported platforms; a fixed prefix
		// would still give ids unique within this process.
		copy(raw[:], "vanevane")
	}
	var g requestIDs
	hex.Encode(g.prefix[:], raw[:])
	return &g
}

// appendNext appends a fresh 32-hex-digit id to dst.
func (g *requestIDs) appendNext(dst []byte) []byte {
	const digits = "0123456789abcdef"
	dst = append(dst, g.prefix[:]...)
	n := g.n.Add(1)
	var c [16]byte
	for i := 15; i >= 0; i-- {
		c[i] = digits[n&0xf]
		n >>= 4
	}
	return append(dst, c[:]...)
}
