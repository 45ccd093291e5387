package proxy

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// The forwarded-header policy, one for both transports:
//
//   - X-Forwarded-For: the client's address is appended to what the
//     request carried (the backend reads the rightmost entries it trusts);
//   - X-Forwarded-Proto and X-Forwarded-Host: kept from a peer in
//     trusted_proxies when it sent them, else set by vane ("http", the
//     Host the request was sent to);
//   - Forwarded: kept from a trusted peer, dropped from others (vane does
//     not write it);
//   - names that differ from these only by '_' for '-' (X_Forwarded_Proto)
//     are always dropped: WSGI and CGI backends read them as the real ones.
//
// The functions here decide; forwarded1 (fasthttp) and
// relayRequestHeaders (HTTP/2 field lists, relay_headers.go) apply the
// decision to each transport's header type.

// Header names of the policy.
const (
	headerXFF       = "X-Forwarded-For"
	headerXFProto   = "X-Forwarded-Proto"
	headerXFHost    = "X-Forwarded-Host"
	headerForwarded = "Forwarded"
)

// keyForwarded is Forwarded's canonical form, for PeekCanonical.
var keyForwarded = []byte(headerForwarded)

// spoofNames are the names whose underscore variants are dropped.
var spoofNames = [...]string{headerXFF, headerXFProto, headerXFHost, headerForwarded, "X-Real-Ip"}

// trustedPeer reports whether peer is in one of the trusted prefixes.
func trustedPeer(trusted []netip.Prefix, peer netip.Addr) bool {
	if len(trusted) == 0 || !peer.IsValid() {
		return false
	}
	peer = peer.Unmap()
	for _, p := range trusted {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// appendXFF appends peer to a prior X-Forwarded-For value.
func appendXFF(dst, prior []byte, peer netip.Addr) []byte {
	dst = dst[:0]
	if len(bytes.TrimSpace(prior)) > 0 {
		dst = append(dst, prior...)
		dst = append(dst, ", "...)
	}
	if peer.IsValid() {
		return peer.Unmap().AppendTo(dst)
	}
	return append(dst, "unknown"...)
}

// underscoreVariant reports whether name is one of spoofNames spelt with
// '_' where the name has '-'.
func underscoreVariant(name []byte) bool {
	if bytes.IndexByte(name, '_') < 0 {
		return false
	}
	for _, s := range spoofNames {
		if len(s) != len(name) {
			continue
		}
		same := true
		for i := range len(s) {
			c := name[i]
			if c == '_' {
				c = '-'
			}
			if c|0x20 != s[i]|0x20 {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	return false
}

// forwarded1 applies the policy to an HTTP/1.1 request; buf is scratch
// space for the X-Forwarded-For value, returned for reuse.
func forwarded1(req *fasthttp.Request, trusted []netip.Prefix, peer netip.Addr, buf []byte) []byte {
	h := &req.Header
	if raw := h.RawHeaders(); bytes.IndexByte(raw, '_') >= 0 {
		dropUnderscoreVariants(h, raw)
	}
	buf = appendXFF(buf, h.PeekCanonical(keyForwardedFor), peer)
	h.SetCanonical(keyForwardedFor, buf)
	trust := trustedPeer(trusted, peer)
	if !trust || len(h.PeekCanonical(keyForwardedPro)) == 0 {
		h.SetCanonical(keyForwardedPro, valueHTTP)
	}
	if !trust || len(h.PeekCanonical(keyForwardedHst)) == 0 {
		h.SetCanonical(keyForwardedHst, h.Host())
	}
	if !trust && len(h.PeekCanonical(keyForwarded)) > 0 {
		h.Del(headerForwarded)
	}
	return buf
}

// dropUnderscoreVariants deletes the underscore variants found in the raw
// header block (only requests with a '_' in their headers get here).
func dropUnderscoreVariants(h *fasthttp.RequestHeader, raw []byte) {
	var names [][]byte
	for len(raw) > 0 {
		var line []byte
		line, raw, _ = bytes.Cut(raw, newline)
		if n, ok := fieldName(line); ok && underscoreVariant(n) {
			names = append(names, append([]byte(nil), n...))
		}
	}
	for _, n := range names {
		h.DelBytes(n)
	}
}
