package proxy

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2/hpack"

	"github.com/vaneproxy/vane/proxy/h2relay"
)

// hpackHeaders adapts an HTTP/2 field list (lower-case names) to
// routing.Headers.
type hpackHeaders []hpack.HeaderField

func (h hpackHeaders) Peek(key string) []byte { return strBytes(getFold(h, key)) }

// routingPath is the path the routing table matches an HTTP/2 request
// by: normalised the way fasthttp normalises an HTTP/1.1 request's path
// (percent-decoded, dot segments resolved, repeated slashes folded), so
// that a model matches the same requests on both transports. The request
// goes upstream with its path as sent, as on HTTP/1.1. Paths that need no
// normalising (nearly all) cost no copy.
func routingPath(p string) []byte {
	if strings.IndexByte(p, '%') < 0 && !strings.Contains(p, "/.") && !strings.Contains(p, "//") {
		return strBytes(p)
	}
	var u fasthttp.URI
	u.SetPath(p)
	return u.Path()
}

// getFold is the first value of the field named name, in any case.
func getFold(h []hpack.HeaderField, name string) string {
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			return h[i].Value
		}
	}
	return ""
}

// isGRPCType reports a gRPC content type (application/grpc, with or
// without a +codec suffix or parameters).
func isGRPCType(ct string) bool {
	const g = "application/grpc"
	return strings.HasPrefix(ct, g) && (len(ct) == len(g) || ct[len(g)] == '+' || ct[len(g)] == ';')
}

// grpcTimeout parses a grpc-timeout value: at most 8 digits and a unit
// (H, M, S, m, u, n).
func grpcTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// grpcStatusField is the grpc-status among h.
func grpcStatusField(h []hpack.HeaderField) (int, bool) {
	for i := range h {
		if h[i].Name == "grpc-status" {
			c, err := strconv.Atoi(h[i].Value)
			if err != nil || c < 0 || c > 16 {
				return 0, false
			}
			return c, true
		}
	}
	return 0, false
}

// relayRequestHeaders appends to dst the fields of req that go upstream,
// under the same policy as the other transports: connection-specific
// fields dropped (RFC 9113 §8.2.2; te only as "trailers"), the version
// override consumed, the request id set, and the forwarded-header policy
// of forwarded.go applied.
func relayRequestHeaders(dst []hpack.HeaderField, req *h2relay.Request, x *exchange) []hpack.HeaderField {
	var xff, proto, host, fwd []string
	for _, f := range req.Header {
		switch f.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
			"x-vane-version", "x-request-id", "host":
			continue
		case "te":
			if !strings.EqualFold(strings.TrimSpace(f.Value), "trailers") {
				continue
			}
		case "x-forwarded-for":
			xff = append(xff, f.Value)
			continue
		case "x-forwarded-proto":
			proto = append(proto, f.Value)
			continue
		case "x-forwarded-host":
			host = append(host, f.Value)
			continue
		case "forwarded":
			fwd = append(fwd, f.Value)
			continue
		}
		if strings.IndexByte(f.Name, '_') >= 0 && underscoreVariant(strBytes(f.Name)) {
			continue
		}
		dst = append(dst, f)
	}
	peer := req.Remote.Addr().Unmap()
	if !req.Remote.IsValid() {
		peer = netip.Addr{}
	}
	trust := trustedPeer(x.snap.trusted, peer)
	dst = append(dst, hpack.HeaderField{Name: "x-forwarded-for",
		Value: string(appendXFF(nil, []byte(strings.Join(xff, ", ")), peer))})
	if !trust || len(proto) == 0 {
		proto = []string{"http"}
	}
	if !trust || len(host) == 0 {
		host = []string{req.Authority}
	}
	dst = append(dst, hpack.HeaderField{Name: "x-forwarded-proto", Value: proto[0]},
		hpack.HeaderField{Name: "x-forwarded-host", Value: host[0]})
	if trust {
		for _, v := range fwd {
			dst = append(dst, hpack.HeaderField{Name: "forwarded", Value: v})
		}
	}
	return append(dst, hpack.HeaderField{Name: "x-request-id", Value: string(x.rid)})
}
