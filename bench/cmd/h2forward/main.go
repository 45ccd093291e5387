// Command h2forward is the bare x/net/http2 peer of the gRPC benchmark
// (bench/grpc.sh): an h2c http2.Server serving internal/h2forward, which
// forwards each stream over one pooled http2.Transport to a single h2c
// backend. It measures what x/net/http2 costs per call on both sides, the
// floor of any proxy built on it.
package main

import (
	"flag"
	"log"
	"net"

	"golang.org/x/net/http2"

	"github.com/vaneproxy/vane/internal/h2forward"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18094", "address to serve h2c on")
	backend := flag.String("backend", "127.0.0.1:18511", "h2c backend host:port")
	flag.Parse()

	handler, _ := h2forward.New(*backend)
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
