// Package proxy is vane's data plane and admin server.
//
// One listener carries HTTP/1.1 (served by fasthttp) and HTTP/2
// cleartext (served by the frame relay of package h2relay, which is what
// gRPC needs). Connections are told apart by the HTTP/2 client preface.
//
// A proxied request is one exchange (exchange.go), whose steps -- route,
// pick, admit, settle, retry, finish -- are the same on both transports;
// each transport only reads the request and writes the answer: http1.go
// for fasthttp, relay.go (and relay_h1.go, for HTTP/2 streams to http://
// endpoints) for HTTP/2.
//
// Every request is matched to a model and a version by the routing table of
// the current snapshot. A snapshot is immutable and swapped with one atomic
// store on reload; long-lived per-endpoint state (in-flight counts, upstream
// connection pools) is carried into the new snapshot when its key
// (model, version, endpoint URL) survives.
package proxy
