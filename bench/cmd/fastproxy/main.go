// Command fastproxy is the bare fasthttp peer of the peer benchmark
// (bench/peers.sh): one fasthttp.HostClient per backend, split by weight
// with an atomic counter, and nothing else — no routing table, health,
// breakers, retries, metrics or sampling. It is the floor a fasthttp-based
// proxy such as vane can approach.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18085", "address to serve on")
	backends := flag.String("backends", "127.0.0.1:18501=80,127.0.0.1:18502=20",
		"comma-separated host:port=weight list; integer weights")
	flag.Parse()

	slots, err := parseBackends(*backends)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fastproxy:", err)
		os.Exit(2)
	}
	var n atomic.Uint64
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			hc := slots[(n.Add(1)-1)%uint64(len(slots))]
			req := &ctx.Request
			req.Header.Del("Connection")
			if err := hc.Do(req, &ctx.Response); err != nil {
				ctx.Response.Reset()
				ctx.SetStatusCode(fasthttp.StatusBadGateway)
			}
			ctx.Response.Header.Del("Connection")
		},
		Name:                          "fastproxy",
		DisableHeaderNamesNormalizing: true,
		ReadTimeout:                   60 * time.Second,
	}
	log.Fatal(srv.ListenAndServe(*listen))
}

// parseBackends expands "addr=w,addr=w" into a slot list of HostClients,
// each client appearing w/gcd times, in smooth weighted round robin order.
func parseBackends(s string) ([]*fasthttp.HostClient, error) {
	type backend struct {
		hc *fasthttp.HostClient
		w  int
	}
	var bs []backend
	for _, part := range strings.Split(s, ",") {
		addr, ws, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			ws = "1"
		}
		if addr == "" || strings.Contains(addr, "/") {
			return nil, fmt.Errorf("backend %q: want host:port", addr)
		}
		w, err := strconv.Atoi(ws)
		if err != nil || w < 1 {
			return nil, fmt.Errorf("backend %q: weight %q must be an integer >= 1", addr, ws)
		}
		bs = append(bs, backend{&fasthttp.HostClient{
			Addr:                          addr,
			MaxConns:                      1024,
			MaxIdleConnDuration:           90 * time.Second,
			DisableHeaderNamesNormalizing: true,
		}, w})
	}
	if len(bs) == 0 {
		return nil, fmt.Errorf("no backends")
	}
	g := bs[0].w
	for _, b := range bs[1:] {
		g = gcd(g, b.w)
	}
	total := 0
	for i := range bs {
		bs[i].w /= g
		total += bs[i].w
	}
	cur := make([]int, len(bs))
	slots := make([]*fasthttp.HostClient, 0, total)
	for range total {
		best := 0
		for i := range bs {
			cur[i] += bs[i].w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		slots = append(slots, bs[best].hc)
	}
	return slots, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
