// Package h2relay relays HTTP/2 cleartext (h2c, prior knowledge) streams to
// h2c upstreams at the frame level: one reader goroutine per connection on
// each side, no goroutine per stream, headers decoded and re-encoded with
// hpack once each way, DATA payloads passed through under flow control.
//
// The package knows nothing of models, versions or metrics. For each
// request its Handler decides where the stream goes (Route) and observes
// it (Observer); vane's proxy package implements both with its exchange.
package h2relay

import (
	"net/netip"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Request is a client's request as its HEADERS arrived. Its slices are
// valid only during Handler.Open.
type Request struct {
	Method, Scheme, Authority, Path string
	// Header holds the regular fields (no pseudo-headers), names lower case.
	Header []hpack.HeaderField
	// EndStream is set when the request has no body.
	EndStream bool
	// ContentLength is the content-length field, -1 when absent.
	ContentLength int64
	// Remote is the client's address.
	Remote netip.AddrPort
}

// Get returns the first value of the (lower-case) field name, "" if none.
func (r *Request) Get(name string) string {
	for i := range r.Header {
		if r.Header[i].Name == name {
			return r.Header[i].Value
		}
	}
	return ""
}

// Handler decides the fate of each request. Open is called on the client
// connection's reader goroutine and must not block.
type Handler interface {
	Open(req *Request) Route
}

// Route is a Handler's answer for one stream: exactly one of Upstream,
// Local and Serve is set.
type Route struct {
	// Upstream relays the stream to an h2c upstream.
	Upstream *Upstream
	// Header is the complete list of regular request fields to send
	// upstream (the handler's hop-by-hop removal and X-Forwarded-* done);
	// the pseudo-headers are the request's own, Authority overriding
	// :authority when set. The relay copies the slice (not the strings).
	// nil sends the request's own fields unchanged; an empty non-nil
	// slice sends none.
	Header    []hpack.HeaderField
	Authority string
	// ResponseHeader is added to the upstream's response headers, fields
	// of the same names that the upstream sent being dropped (x-vane-version,
	// x-request-id).
	ResponseHeader []hpack.HeaderField
	// Deadline ends the stream: before the response headers the Observer's
	// Failed decides the answer (ErrTimeout); after them both streams are
	// reset (CANCEL). On a Serve route it makes the ServerStream's blocked
	// Read and Write return ErrTimeout instead, and Serve answers.
	Deadline time.Time
	// RetryBuffer is how many request body bytes are kept so the request
	// can be sent again to another upstream; 0 disables retries. A body
	// that outgrows it is not retried.
	RetryBuffer int
	// MaxRequestBody caps the request body (0: no cap); over it the
	// stream is answered with Failed(ErrRequestTooLarge).
	MaxRequestBody int64
	// Observer sees the stream; nil for none.
	Observer Observer

	// Local answers the stream without an upstream.
	Local *Response

	// Serve takes the stream over on a goroutine of its own (the slow
	// path: an HTTP/1.1 upstream, say). The Request is not valid there:
	// Open copies into the closure what Serve needs of it.
	Serve func(st *ServerStream)
}

// Response is a complete answer written by the relay itself. The relay
// only reads it (Body is sent from the slice as it is), so one Response
// may answer many streams.
type Response struct {
	Status int
	Header []hpack.HeaderField
	Body   []byte
	// Trailer, when set, ends the stream as trailers (gRPC status).
	Trailer []hpack.HeaderField
}

// Observer follows one relayed stream. Calls about the request
// (RequestData) are serialised among themselves, as are calls about the
// response and attempts (ResponseHeaders, ResponseData, Trailers,
// Failed); Done is called once, last, after every other call returned.
type Observer interface {
	// RequestData sees each DATA payload of the client's request. p is
	// only valid during the call.
	RequestData(p []byte)
	// ResponseHeaders sees the upstream's response headers before they
	// go to the client. endStream marks a headers-only answer (a gRPC
	// trailers-only status). retryable says the whole request is still
	// held and an attempt is left; then returning a non-nil Attempt
	// retries the request there instead, and the answer is dropped. When
	// retryable is false the result is ignored.
	ResponseHeaders(status int, h []hpack.HeaderField, endStream, retryable bool) *Attempt
	// ResponseData sees each DATA payload of the answer.
	ResponseData(p []byte)
	// Trailers sees the answer's trailers.
	Trailers(h []hpack.HeaderField)
	// Failed is told that the attempt failed before the response headers
	// reached the client (dial failure, upstream reset or GOAWAY, timeout,
	// request too large, the client's body broke). retryable says the
	// whole request is still held. It returns where to go next, or the
	// answer to give. An Attempt is taken only when retryable (never
	// after ErrTimeout); with neither, the relay answers 502 (504 for
	// ErrTimeout, 413 for ErrRequestTooLarge).
	Failed(err error, retryable bool) (next *Attempt, answer *Response)
	// Done ends the stream: how it ended and how many bytes went each way.
	Done(o Outcome)
}

// Attempt is another try of a request.
type Attempt struct {
	Upstream       *Upstream
	ResponseHeader []hpack.HeaderField
}

// Outcome is how a relayed stream ended.
type Outcome struct {
	// Status is the HTTP status the client got (0: none, the stream was
	// reset before headers).
	Status int
	// Err is nil for a stream that completed; else why it did not
	// (ErrClientReset, ErrUpstreamReset, ErrTimeout, ...).
	Err error
	// ReqBytes and RespBytes are the body bytes relayed.
	ReqBytes, RespBytes int64
	// HeadersSent says the response headers reached the client's
	// connection.
	HeadersSent bool
}

// ServerStream is a stream a Handler's Serve took over: it reads the
// request body and writes the answer itself, blocking as it needs.
type ServerStream struct {
	impl serverStreamImpl
}

type serverStreamImpl interface {
	Read(p []byte) (int, error)
	WriteHeaders(status int, h []hpack.HeaderField, endStream bool) error
	Write(p []byte) (int, error)
	WriteTrailers(h []hpack.HeaderField) error
	Reset(code http2.ErrCode)
}

// Read reads the request body; io.EOF at its end.
func (s *ServerStream) Read(p []byte) (int, error) { return s.impl.Read(p) }

// WriteHeaders sends the response headers.
func (s *ServerStream) WriteHeaders(status int, h []hpack.HeaderField, endStream bool) error {
	return s.impl.WriteHeaders(status, h, endStream)
}

// Write sends response body bytes (blocking under flow control).
func (s *ServerStream) Write(p []byte) (int, error) { return s.impl.Write(p) }

// WriteTrailers ends the stream with trailers.
func (s *ServerStream) WriteTrailers(h []hpack.HeaderField) error { return s.impl.WriteTrailers(h) }

// Reset resets the stream.
func (s *ServerStream) Reset(code http2.ErrCode) { s.impl.Reset(code) }

// The engine (server.go, pool.go, stream.go, serve.go) provides:
//
//	type Server struct{ Handler Handler; ...limits }   // zero limits: defaults
//	func (s *Server) ServeConn(c net.Conn)   // c yields the client preface first
//	func (s *Server) Shutdown(ctx context.Context) error // GOAWAY all, wait for streams
//	type Pool struct{ ... }
//	func NewPool(o PoolOptions) *Pool
//	func (p *Pool) Upstream(addr string) *Upstream   // one handle per address
//	func (p *Pool) Close()                           // every connection, live or not
//	func (u *Upstream) Addr() string
//	func (u *Upstream) Close()                        // idle connections closed; live streams finish
//
// and the errors an Outcome or Failed carries (ErrTimeout, ErrClientReset,
// ErrClientGone, ErrUpstreamReset with ResetError, ErrUpstreamConnect,
// ErrUpstreamLost, ErrUpstreamClosed, ErrGoAway, ErrRequestTooLarge, ...).
//
// When Serve returns, a stream whose headers were not written is reset
// (INTERNAL_ERROR) and one not yet ended is ended with an empty DATA frame.
// When Serve panics, the stream is reset (INTERNAL_ERROR) whatever was
// written, the connection goes on, and the Outcome's Err wraps
// ErrServeReset with the panic value.
