package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// vane's own refusals to a gRPC client are gRPC errors: HTTP 200 with
// grpc-status and grpc-message in a trailers-only answer (HEADERS with
// END_STREAM). A JSON body would reach grpc-go as "unexpected HTTP status
// code 400 ... application/json" instead of a status the client's retry
// and error handling understand.

// The gRPC status codes vane answers with (google.golang.org/grpc/codes).
const (
	grpcCanceled          = 1
	grpcInvalidArgument   = 3
	grpcDeadlineExceeded  = 4
	grpcNotFound          = 5
	grpcResourceExhausted = 8
	grpcUnavailable       = 14
)

// grpcCode maps the HTTP status vane would answer with onto a gRPC code.
func grpcCode(httpStatus int) int {
	switch httpStatus {
	case http.StatusBadRequest:
		return grpcInvalidArgument
	case http.StatusNotFound:
		return grpcNotFound
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return grpcDeadlineExceeded
	case http.StatusRequestEntityTooLarge:
		return grpcResourceExhausted
	case statusClientClosed:
		return grpcCanceled
	default: // 502, 503 and anything else vane refuses with
		return grpcUnavailable
	}
}

// grpcPercentEncode encodes a grpc-message as the gRPC HTTP/2 protocol
// asks: bytes outside printable ASCII, and '%', as %XX.
func grpcPercentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// grpcCodeLabels are the grpc_code label values: "0".."16" and "unknown".
var grpcCodeLabels = func() (l [18]string) {
	for c := range 17 {
		l[c] = strconv.Itoa(c)
	}
	l[17] = "unknown"
	return l
}()

// grpcBreakerStatus is the HTTP status the breaker and retry policy judge
// a gRPC answer by: the codes that say the server failed count as the
// 5xx that stands for them; the others (OK, and the caller's own errors
// such as INVALID_ARGUMENT or NOT_FOUND) keep the wire status.
func grpcBreakerStatus(code, wire int) int {
	switch code {
	case grpcUnavailable:
		return http.StatusServiceUnavailable
	case grpcDeadlineExceeded:
		return http.StatusGatewayTimeout
	case 2, 13, 15: // UNKNOWN, INTERNAL, DATA_LOSS
		return http.StatusInternalServerError
	default:
		return wire
	}
}

// grpcCall counts one gRPC call of vm that ended with code (-1: without a
// grpc-status, counted as "unknown").
func (vm *versionMetrics) grpcCall(code int) {
	i := len(grpcCodeLabels) - 1
	if code >= 0 && code < i {
		i = code
	}
	if c := vm.grpc[i].Load(); c != nil {
		(*c).Inc()
		return
	}
	c := vm.m.grpcRequests.WithLabelValues(vm.model, vm.version, grpcCodeLabels[i])
	vm.grpc[i].Store(&c)
	c.Inc()
}
