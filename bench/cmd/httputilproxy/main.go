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
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18084", "address to serve on")
	backends := flag.String("backends", "http://127.0.0.1:18501=80,http://127.0.0.1:18502=20",
		"comma-separated URL=weight list; integer weights")
	flag.Parse()

	slots, err := parseBackends(*backends)
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

// parseBackends expands "url=w,url=w" into a slot list where each URL
// appears w/gcd times, interleaved so a counter walks the weights evenly.
func parseBackends(s string) ([]*url.URL, error) {
	type backend struct {
		u *url.URL
		w int
	}
	var bs []backend
	for _, part := range strings.Split(s, ",") {
		raw, ws, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			ws = "1"
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("backend %q: not a URL", raw)
		}
		w, err := strconv.Atoi(ws)
		if err != nil || w < 1 {
			return nil, fmt.Errorf("backend %q: weight %q must be an integer >= 1", raw, ws)
		}
		bs = append(bs, backend{u, w})
	}
	if len(bs) == 0 {
		return nil, fmt.Errorf("no backends")
	}
	g := bs[0].w
	for _, b := range bs[1:] {
		g = gcd(g, b.w)
	}
	// Smooth weighted round robin over one cycle.
	total := 0
	for i := range bs {
		bs[i].w /= g
		total += bs[i].w
	}
	cur := make([]int, len(bs))
	slots := make([]*url.URL, 0, total)
	for range total {
		best := 0
		for i := range bs {
			cur[i] += bs[i].w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		slots = append(slots, bs[best].u)
	}
	return slots, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
