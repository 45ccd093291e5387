package h2relay

import (
	"errors"
	"fmt"

	"golang.org/x/net/http2"
)

// Errors an Outcome or Observer.Failed carries. Resets and dial failures
// wrap them with details; test with errors.Is.
var (
	ErrTimeout          = errors.New("h2relay: stream deadline exceeded")
	ErrClientReset      = errors.New("h2relay: client reset the stream")
	ErrClientGone       = errors.New("h2relay: client connection closed")
	ErrUpstreamReset    = errors.New("h2relay: upstream reset the stream")
	ErrUpstreamConnect  = errors.New("h2relay: cannot connect to upstream")
	ErrUpstreamLost     = errors.New("h2relay: upstream connection lost")
	ErrUpstreamClosed   = errors.New("h2relay: upstream handle closed")
	ErrUpstreamProtocol = errors.New("h2relay: upstream protocol error")
	ErrRequestTooLarge  = errors.New("h2relay: request body too large")
	ErrGoAway           = errors.New("h2relay: upstream going away")
	ErrServeReset       = errors.New("h2relay: Serve reset the stream")
	ErrStreamProtocol   = errors.New("h2relay: client protocol error on stream")
)

// ResetError is an upstream's RST_STREAM before the answer reached the
// client; it matches ErrUpstreamReset with errors.Is.
type ResetError struct{ Code http2.ErrCode }

func (e ResetError) Error() string {
	return fmt.Sprintf("h2relay: upstream reset the stream (%v)", e.Code)
}
func (e ResetError) Is(target error) bool { return target == ErrUpstreamReset }

// refusedErr is the REFUSED_STREAM reset, allocated once.
var refusedErr error = ResetError{http2.ErrCodeRefusedStream}
