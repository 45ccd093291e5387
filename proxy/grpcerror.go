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

// isGRPC reports whether r is a gRPC call (content-type application/grpc,
// with or without a +codec suffix).
func isGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/grpc") &&
		(len(ct) == len("application/grpc") || ct[len("application/grpc")] == '+' || ct[len("application/grpc")] == ';')
}

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

// writeGRPCError writes err as a trailers-only gRPC answer. The wire
// status is 200, but the request failed: the statusWriter beneath w, if
// any, keeps httpStatus for the metrics and the breaker.
func writeGRPCError(w http.ResponseWriter, httpStatus int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(grpcCode(httpStatus)))
	h.Set("Grpc-Message", grpcPercentEncode(msg))
	w.WriteHeader(http.StatusOK)
	for {
		if sw, ok := w.(*statusWriter); ok {
			sw.code = httpStatus
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
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
var grpcCodeLabels = func() []string {
	l := make([]string, 0, 18)
	for c := range 17 {
		l = append(l, strconv.Itoa(c))
	}
	return append(l, "unknown")
}()

// grpcStatusOf is the grpc-status an answer carried: in its headers (a
// trailers-only answer, or vane's own error) or, once ReverseProxy has
// copied them, in its trailers (stored under http.TrailerPrefix). ok is
// false when there is none or it is not a code.
func grpcStatusOf(h http.Header) (code int, ok bool) {
	v := h.Get("Grpc-Status")
	if v == "" {
		if vv := h[http.TrailerPrefix+"Grpc-Status"]; len(vv) > 0 {
			v = vv[0]
		}
	}
	c, err := strconv.Atoi(v)
	if err != nil || c < 0 || c > 16 {
		return 0, false
	}
	return c, true
}

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

// observeGRPC counts one gRPC call of vm by the status h carries.
func (vm *versionMetrics) observeGRPC(h http.Header) {
	label := "unknown"
	if c, ok := grpcStatusOf(h); ok {
		label = grpcCodeLabels[c]
	}
	vm.m.grpcRequests.WithLabelValues(vm.model, vm.version, label).Inc()
}
