package routing

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// Endpoint is one upstream address of a version. Its identity fields are
// immutable; its in-flight counter and routable flag live in a state that
// Build carries from one Table to the next while the endpoint's key
// (model name, version name, URL) survives, so a reload does not lose them.
type Endpoint struct {
	// ID is the endpoint's index in Table.Endpoints(): dense from 0, so
	// callers can keep per-endpoint data (transports, breakers) in a slice.
	// IDs are per Table; the same endpoint may get another ID after a reload.
	ID int
	// URL is the endpoint as configured, e.g. "h2c://10.0.0.7:8001".
	URL string
	// Scheme is "http" (HTTP/1.1 upstream) or "h2c" (HTTP/2 cleartext).
	Scheme string
	// Addr is host:port. A URL without a port gets port 80.
	Addr string
	// Model and Version name the endpoint's owners.
	Model, Version string

	st *endpointState
	v  *Version // owner in this Table
}

// endpointState is the endpoint's long-lived, mutable part. It is shared by
// every Table built from the one that created it while the key survives.
type endpointState struct {
	inFlight atomic.Int64
	// down is the inverse of routable so that the zero value means routable.
	down atomic.Bool
}

// Begin counts a request as in flight on e. Every Begin must be matched by
// one End, also when the request fails.
func (e *Endpoint) Begin() { e.st.inFlight.Add(1) }

// End undoes one Begin.
func (e *Endpoint) End() { e.st.inFlight.Add(-1) }

// InFlight is the number of requests between Begin and End, counted across
// reloads that kept the endpoint.
func (e *Endpoint) InFlight() int64 { return e.st.inFlight.Load() }

// Routable reports whether health currently lets e take requests. New
// endpoints start routable; change it with Table.SetRoutable.
func (e *Endpoint) Routable() bool { return !e.st.down.Load() }

// PickEndpoint chooses the endpoint of v for one request: of two endpoints
// drawn at random among the routable ones, the one with fewer requests in
// flight (power of two choices; the first drawn wins a tie). rnd is the
// caller's random 64-bit value (e.g. math/rand/v2.Uint64()); its low and high
// halves make the two draws. With one routable endpoint that one is returned;
// with none, nil. It allocates nothing.
//
// The routable set is the one published by the latest Build or SetRoutable
// of v's model, so PickEndpoint never returns an endpoint that was already
// marked down when it was called.
func (v *Version) PickEndpoint(rnd uint64) *Endpoint {
	up := v.Model.state.Load().up[v.Index]
	n := uint64(len(up))
	switch n {
	case 0:
		return nil
	case 1:
		return up[0]
	}
	// Multiply-shift maps a 32-bit draw onto [0,n) without a division.
	i := (rnd & 0xffffffff) * n >> 32
	j := (rnd >> 32) * (n - 1) >> 32
	if j >= i {
		j++ // j is drawn among the other n-1 endpoints
	}
	a, b := up[i], up[j]
	if b.InFlight() < a.InFlight() {
		return b
	}
	return a
}

// parseEndpoint splits an endpoint URL into scheme and host:port. Only the
// two schemes vane speaks are accepted; any path after the authority is
// ignored because upstream requests keep the client's path.
func parseEndpoint(raw string) (scheme, addr string, err error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "", "", fmt.Errorf("endpoint %q: want http://host:port or h2c://host:port", raw)
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "h2c" {
		return "", "", fmt.Errorf("endpoint %q: scheme %q is neither http nor h2c", raw, scheme)
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if rest == "" || strings.Contains(rest, "@") {
		return "", "", fmt.Errorf("endpoint %q: want host:port after the scheme", raw)
	}
	if !hasPort(rest) {
		rest += ":80"
	}
	return scheme, rest, nil
}

// hasPort reports whether hostport ends in a port, minding IPv6 brackets.
func hasPort(hostport string) bool {
	colon := strings.LastIndexByte(hostport, ':')
	return colon >= 0 && colon > strings.LastIndexByte(hostport, ']')
}

// endpointKey identifies an endpoint across Tables.
type endpointKey struct {
	model, version, url string
}
