// Command h2forward is the bare x/net/http2 peer of the gRPC benchmark
// (bench/grpc.sh): an h2c http2.Server whose handler forwards each stream
// over one pooled http2.Transport to a single h2c backend, copying
// headers, body and trailers. No routing, health checks, breakers or
// metrics: it measures what x/net/http2 costs per call on both sides, the
// floor of any proxy built on it.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"log"
	"net"
	"net/http"

	"golang.org/x/net/http2"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18094", "address to serve h2c on")
	backend := flag.String("backend", "127.0.0.1:18511", "h2c backend host:port")
	flag.Parse()

	var d net.Dialer
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+*backend+r.URL.RequestURI(), r.Body)
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
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http2.Server{}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go srv.ServeConn(c, &http2.ServeConnOpts{Handler: handler})
	}
}
