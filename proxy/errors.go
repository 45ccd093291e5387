package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"syscall"

	"github.com/valyala/fasthttp"

	"github.com/vaneproxy/vane/routing"
)

// Errors of vane's own making. Each maps to one HTTP status in statusOf.
var (
	// ErrNoRoute means no model matched the request.
	ErrNoRoute = errors.New("no model matches the request")
	// ErrUpstreamTimeout means the model's timeout passed before the
	// upstream answered.
	ErrUpstreamTimeout = errors.New("upstream timed out")
	// ErrUpstream means the upstream could not be reached or broke the
	// exchange before answering.
	ErrUpstream = errors.New("upstream failed")
	// ErrNoEndpoint means the chosen version has no routable endpoint.
	ErrNoEndpoint = errors.New("version has no routable endpoint")
	// ErrAmbiguousFraming means the request had both Content-Length and
	// Transfer-Encoding.
	ErrAmbiguousFraming = errors.New("request has both Content-Length and Transfer-Encoding")
)

// apiError is the JSON body of every answer vane makes itself.
type apiError struct {
	Error     string `json:"error"`
	Model     string `json:"model,omitempty"`
	Version   string `json:"version,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// statusOf is the one place that maps vane's errors to HTTP statuses.
func statusOf(err error) int {
	if code := faultStatus(err); code != 0 {
		return code
	}
	switch {
	case errors.Is(err, routing.ErrUnknownVersion), errors.Is(err, ErrAmbiguousFraming):
		return http.StatusBadRequest
	case errors.Is(err, ErrNoRoute):
		return http.StatusNotFound
	case errors.Is(err, routing.ErrNoRoutableVersion), errors.Is(err, ErrNoEndpoint),
		errors.Is(err, ErrBreakerOpen), errors.Is(err, ErrOverloaded):
		return http.StatusServiceUnavailable
	case isTimeout(err):
		return http.StatusGatewayTimeout
	default:
		return http.StatusBadGateway
	}
}

// isTimeout reports whether err is any flavour of deadline passing.
func isTimeout(err error) bool {
	if errors.Is(err, ErrUpstreamTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// upstreamReason classifies an upstream failure into a bounded label value.
func upstreamReason(err error) string {
	switch {
	case errors.Is(err, ErrResponseTooLarge), errors.Is(err, fasthttp.ErrBodyTooLarge):
		return "too_large"
	case isTimeout(err):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connect"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, fasthttp.ErrConnectionClosed):
		return "reset"
	default:
		return "other"
	}
}

// errorBody renders the JSON body for err: a fixed message per kind of
// error (publicMessage) and the request id, never the error's detail.
func errorBody(err error, model, version, rid string) []byte {
	b, mErr := json.Marshal(apiError{Error: publicMessage(err), Model: model, Version: version, RequestID: rid})
	if mErr != nil { // cannot happen with string fields; keep the body non-empty anyway
		return []byte(`{"error":"internal error"}`)
	}
	return b
}

// routingPublic is the message of routing's errors, "" for others.
func routingPublic(err error) string {
	for _, e := range []error{routing.ErrUnknownVersion, routing.ErrNoRoutableVersion} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return ""
}
