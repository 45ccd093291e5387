// Command h2relayfwd is the frame-level relay (proxy/h2relay) as a peer
// of the gRPC benchmark (bench/grpc.sh): it serves h2c on -listen and
// relays every stream to one h2c upstream, headers passed as they came.
// No routing, health checks, breakers or metrics: it measures what the
// relay engine costs per call, to set beside h2forward (x/net/http2),
// nginx and HAProxy.
package main

import (
	"flag"
	"log"
	"net"

	"github.com/vaneproxy/vane/proxy/h2relay"
)

type toOne struct{ u *h2relay.Upstream }

func (h toOne) Open(*h2relay.Request) h2relay.Route {
	return h2relay.Route{Upstream: h.u} // nil Header: the request's own fields
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18095", "address to serve h2c on")
	upstream := flag.String("upstream", "127.0.0.1:18511", "h2c upstream host:port")
	flag.Parse()

	pool := h2relay.NewPool(h2relay.PoolOptions{})
	defer pool.Close()
	srv := &h2relay.Server{Handler: toOne{pool.Upstream(*upstream)}}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		go srv.ServeConn(c)
	}
}
