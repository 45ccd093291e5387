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
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaneproxy/vane/bench/internal/weighted"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18085", "address to serve on")
	backends := flag.String("backends", "127.0.0.1:18501=80,127.0.0.1:18502=20",
		"comma-separated host:port=weight list; integer weights")
	flag.Parse()

	slots, err := weighted.Slots(*backends, func(addr string) (*fasthttp.HostClient, error) {
		if addr == "" || strings.Contains(addr, "/") {
			return nil, fmt.Errorf("want host:port")
		}
		return &fasthttp.HostClient{
			Addr:                          addr,
			MaxConns:                      1024,
			MaxIdleConnDuration:           90 * time.Second,
			DisableHeaderNamesNormalizing: true,
		}, nil
	})
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
