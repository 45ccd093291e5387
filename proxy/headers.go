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

// headerDeleter is what fasthttp's request and response headers share.
type headerDeleter interface {
	Peek(key string) []byte
	Del(key string)
	DelBytes(key []byte)
}

// removeHopHeaders deletes the hop-by-hop fields and every field that the
// Connection header names. It allocates nothing when Connection is absent
// or lists only the usual keep-alive/close tokens.
func removeHopHeaders(h headerDeleter) {
	if c := h.Peek("Connection"); len(c) > 0 {
		for len(c) > 0 {
			var tok []byte
			if i := bytes.IndexByte(c, ','); i >= 0 {
				tok, c = c[:i], c[i+1:]
			} else {
				tok, c = c, nil
			}
			tok = bytes.TrimSpace(tok)
			if len(tok) == 0 || bytes.EqualFold(tok, []byte("close")) || bytes.EqualFold(tok, []byte("keep-alive")) {
				continue
			}
			h.DelBytes(tok)
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// setForwarded appends the client address to X-Forwarded-For and sets
// X-Forwarded-Proto and X-Forwarded-Host, as httputil.ReverseProxy does.
func setForwarded(req *fasthttp.Request, clientIP netip.Addr, buf []byte) []byte {
	h := &req.Header
	buf = buf[:0]
	if prior := h.Peek("X-Forwarded-For"); len(prior) > 0 {
		buf = append(buf, prior...)
		buf = append(buf, ", "...)
	}
	if clientIP.IsValid() {
		buf = clientIP.AppendTo(buf)
	} else {
		buf = append(buf, "unknown"...)
	}
	h.SetBytesV("X-Forwarded-For", buf)
	if len(h.Peek("X-Forwarded-Proto")) == 0 {
		h.Set("X-Forwarded-Proto", "http")
	}
	if len(h.Peek("X-Forwarded-Host")) == 0 {
		h.SetBytesV("X-Forwarded-Host", h.Host())
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
