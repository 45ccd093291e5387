// Package h2forward is the bare x/net/http2 forwarder that vane's h2c
// relay is measured against: a handler that sends each stream over one
// pooled http2.Transport to a single h2c backend, copying headers, body
// and trailers, with no routing, breakers or metrics. bench/cmd/h2forward
// serves it as a peer of the gRPC benchmark; h2relay's Go benchmark runs it
// in-process.
package h2forward

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"

	"golang.org/x/net/http2"
)

// New returns the forwarder to backend (host:port, h2c) and its
// transport, whose idle connections the caller closes when done.
func New(backend string) (http.Handler, *http2.Transport) {
	var d net.Dialer
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+backend+r.URL.RequestURI(), r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		out.Header, out.ContentLength = r.Header, r.ContentLength
		resp, err := tr.RoundTrip(out)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				_, _ = w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				break // io.EOF, or the backend's stream broke: the client sees the stream end
			}
		}
		for k, vs := range resp.Trailer {
			w.Header()[http.TrailerPrefix+k] = vs
		}
	}), tr
}
