// Command httputilproxy is the net/http baseline of the peer benchmark
// (bench/peers.sh): Go's httputil.ReverseProxy with a tuned Transport in
// front of two backends, split by weight with an atomic counter. It has no
// health checks, breakers, retries or metrics; it measures what the
// standard library costs per request and nothing else.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/vaneproxy/vane/bench/internal/weighted"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18084", "address to serve on")
	backends := flag.String("backends", "http://127.0.0.1:18501=80,http://127.0.0.1:18502=20",
		"comma-separated URL=weight list; integer weights")
	flag.Parse()

	slots, err := weighted.Slots(*backends, func(raw string) (*url.URL, error) {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("not a URL")
		}
		return u, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "httputilproxy:", err)
		os.Exit(2)
	}
	var n atomic.Uint64
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			u := slots[(n.Add(1)-1)%uint64(len(slots))]
			r.SetURL(u)
			r.SetXForwarded()
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	srv := &http.Server{Addr: *listen, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
