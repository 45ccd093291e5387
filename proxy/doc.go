// Package proxy is vane's data plane and admin server.
//
// One listener carries HTTP/1.1 (served by fasthttp, which is what a
// sidecar's cost per request is judged on) and HTTP/2 cleartext (served by
// golang.org/x/net/http2 with httputil.ReverseProxy, which is what gRPC
// needs). Connections are told apart by the HTTP/2 client preface.
//
// Every request is matched to a model and a version by the routing table of
// the current snapshot. A snapshot is immutable and swapped with one atomic
// store on reload; long-lived per-endpoint state (in-flight counts, upstream
// connection pools) is carried into the new snapshot when its key
// (model, version, endpoint URL) survives.
package proxy
