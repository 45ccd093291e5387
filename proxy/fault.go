package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"syscall"

	"github.com/valyala/fasthttp"
)

// Fault classification, shared by both transports: a failed exchange is
// either the endpoint's fault (it counts toward the endpoint's breaker and
// vane_upstream_errors_total, and the client gets 502/504) or the client's
// (a 4xx or 499, counted under vane_requests_total only; the breaker
// records it as neutral). A client must never be able to open a healthy
// endpoint's breaker by what it sends.

// Client faults.
var (
	// ErrBadRequest means the request could not be forwarded as sent (a
	// request target vane does not serve, a request without a host).
	ErrBadRequest = errors.New("malformed request")
	// ErrClientBody means the client's request body ended before its
	// declared length, or its stream broke.
	ErrClientBody = errors.New("request body incomplete")
	// ErrClientTimeout means the client was still sending its request when
	// the model's timeout passed.
	ErrClientTimeout = errors.New("request not received within the model's timeout")
	// ErrBodyRefused means the endpoint closed the connection while the
	// request's (large) body was being sent: it refused the body.
	ErrBodyRefused = errors.New("request body refused by the model")
	// ErrClientGone means the client went away before its answer.
	ErrClientGone = errors.New("client closed the request")
)

// ErrResponseTooLarge means an answer vane reads whole was larger than
// the model's limits.max_response_bytes. It is the endpoint's fault.
var ErrResponseTooLarge = errors.New("upstream answer exceeds limits.max_response_bytes")

// statusClientClosed is nginx's 499: the client closed the request. It
// is only counted, never sent (nobody is left to read it).
const statusClientClosed = 499

// refusedBodyMin is the size from which a write that breaks while the
// request is sent means the endpoint refused the body. A smaller request
// fits in the socket buffers whole; a write of it fails only on a
// connection the endpoint had already closed (fasthttp retries those once).
const refusedBodyMin = 64 << 10

// clientFault reports whether err is the client's doing.
func clientFault(err error) bool {
	if err == nil { // every answered attempt: skip the six errors.Is
		return false
	}
	return errors.Is(err, ErrBadRequest) || errors.Is(err, ErrClientBody) ||
		errors.Is(err, ErrClientTimeout) || errors.Is(err, ErrBodyRefused) ||
		errors.Is(err, ErrClientGone) || errors.Is(err, ErrAmbiguousFraming)
}

// clientSide is what the request path knows of the client's part in a
// failed exchange.
type clientSide struct {
	// gone: the client cancelled (h2 stream reset, connection closed).
	gone bool
	// bodyErr is the error reading the client's body gave, nil if none.
	bodyErr error
	// stalled: a read of the client's body was waiting for the client.
	stalled bool
	// bodyLen is the request body's length, -1 when unknown.
	bodyLen int64
	// expired: the model's timeout had passed when the exchange failed.
	expired bool
}

// classify maps a failed exchange's transport error to vane's error: a
// client fault when the client caused it, else ErrResponseTooLarge,
// ErrUpstreamTimeout or ErrUpstream, wrapping err for the log.
func classify(err error, c clientSide) error {
	switch {
	case err == nil:
		return nil
	case clientFault(err), errors.Is(err, ErrResponseTooLarge), errors.Is(err, ErrUpstream),
		errors.Is(err, ErrUpstreamTimeout):
		return err // classified already
	case c.gone || errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %w", ErrClientGone, err)
	case c.bodyErr != nil:
		return fmt.Errorf("%w: %w", ErrClientBody, c.bodyErr)
	case c.stalled && (c.expired || isTimeout(err)):
		return fmt.Errorf("%w: %w", ErrClientTimeout, err)
	case refused(err, c.bodyLen):
		return fmt.Errorf("%w: %w", ErrBodyRefused, err)
	case unsendable(err):
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return fmt.Errorf("%w: %w", ErrResponseTooLarge, err)
	case isTimeout(err):
		return fmt.Errorf("%w: %w", ErrUpstreamTimeout, err)
	default:
		return fmt.Errorf("%w: %w", ErrUpstream, err)
	}
}

// refused reports a large request body that the endpoint cut: a write of
// it failed, or the connection was reset (or closed) before any answer,
// which is what a refusing endpoint's close looks like once the body sat
// in the socket buffers.
func refused(err error, bodyLen int64) bool {
	if bodyLen < refusedBodyMin || isTimeout(err) {
		return false
	}
	var we *requestWriteError
	return errors.As(err, &we) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, fasthttp.ErrConnectionClosed)
}

// unsendable reports the fasthttp errors of a request that cannot be sent
// as it is: they say nothing of the endpoint.
func unsendable(err error) bool {
	return errors.Is(err, fasthttp.ErrHostClientRedirectToDifferentScheme) ||
		strings.Contains(err.Error(), "missing required Host header")
}

// requestWriteError marks an error that writing a request to an upstream
// connection returned, so that classify can tell it from a read's.
type requestWriteError struct{ err error }

func (e *requestWriteError) Error() string { return "writing the request: " + e.err.Error() }
func (e *requestWriteError) Unwrap() error { return e.err }

// publicErrors are the messages a client may see; anything else is
// "request failed". The detail of an error (upstream bytes, addresses)
// goes to the log, never to the client.
var publicErrors = []error{
	ErrNoRoute, ErrAmbiguousFraming, ErrNoEndpoint, ErrBreakerOpen, ErrOverloaded,
	ErrBadRequest, ErrClientBody, ErrClientTimeout, ErrBodyRefused, ErrClientGone,
	ErrResponseTooLarge, ErrUpstreamTimeout, ErrUpstream,
}

// upstreamStatus is an upstream's answer with a failure status and no body.
type upstreamStatus int

func (s upstreamStatus) Error() string { return fmt.Sprintf("upstream answered %d", int(s)) }

// publicMessage is the fixed message the client gets for err.
func publicMessage(err error) string {
	var us upstreamStatus
	if errors.As(err, &us) {
		return us.Error()
	}
	if isTimeout(err) {
		return ErrUpstreamTimeout.Error()
	}
	for _, e := range publicErrors {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	if pe := routingPublic(err); pe != "" {
		return pe
	}
	return "request failed"
}

// faultStatus is the HTTP status of a client fault, 0 for other errors.
func faultStatus(err error) int {
	switch {
	case errors.Is(err, ErrClientGone):
		return statusClientClosed
	case errors.Is(err, ErrClientTimeout):
		return http.StatusRequestTimeout
	case errors.Is(err, ErrBodyRefused):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrClientBody), errors.Is(err, ErrAmbiguousFraming):
		return http.StatusBadRequest
	}
	return 0
}

// logDetail is the error text for the log: fasthttp's parse errors quote
// the bytes they failed on, which may be anything the upstream sent.
func logDetail(err error) string {
	msg := err.Error()
	for _, cut := range []string{"buffer size=", "contents:", "contents=\""} {
		if i := strings.Index(msg, cut); i >= 0 {
			msg = msg[:i] + "[contents omitted]"
		}
	}
	return msg
}

// logFailure logs the detail of a failure the client got a fixed message
// for: endpoint faults as warnings, client faults at debug level.
func (s *Server) logFailure(err error, model, version string, rid []byte) {
	detail := logDetail(err)
	if detail == publicMessage(err) {
		return // nothing beyond what the client was told
	}
	lvl := slog.LevelWarn
	if clientFault(err) {
		lvl = slog.LevelDebug
	}
	s.log.Log(context.Background(), lvl, "request failed", "model", model, "version", version,
		"request_id", string(rid), "error", detail)
}
