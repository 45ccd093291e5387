package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"

	"github.com/vaneproxy/vane/routing"
)

// target is what the HTTP/2 request path hands the reverse proxy.
type target struct {
	ep    *routing.Endpoint
	vm    *versionMetrics
	model string
	ver   string
	rid   string
	// err is the upstream error the ErrorHandler saw, for the breaker.
	err error
}

type targetKey struct{}

// transports carry the net/http side: HTTP/2 cleartext to h2c:// endpoints
// and HTTP/1.1 to http:// endpoints. Neither consults proxy environment
// variables: vane dials only configured endpoints.
type transports struct {
	h1 *http.Transport
	h2 *http2.Transport
}

func newTransports() *transports {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &transports{
		h1: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   false,
		},
		h2: &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			ReadIdleTimeout: 30 * time.Second,
		},
	}
}

// RoundTrip sends the request over the transport its endpoint needs.
func (t *transports) RoundTrip(r *http.Request) (*http.Response, error) {
	tg, _ := r.Context().Value(targetKey{}).(*target)
	if tg != nil && tg.ep.Scheme == "h2c" {
		return t.h2.RoundTrip(r)
	}
	return t.h1.RoundTrip(r)
}

func (s *Server) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			tg := pr.In.Context().Value(targetKey{}).(*target)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = tg.ep.Addr
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			pr.Out.Header.Del(HeaderVersion)
			pr.Out.Header.Set(HeaderRequestID, tg.rid)
		},
		Transport:     s.transports,
		FlushInterval: -1, // gRPC and SSE: every write goes out at once
		ModifyResponse: func(resp *http.Response) error {
			tg := resp.Request.Context().Value(targetKey{}).(*target)
			resp.Header.Set(HeaderVersion, tg.ver)
			resp.Header.Set(HeaderRequestID, tg.rid)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			tg := r.Context().Value(targetKey{}).(*target)
			if errors.Is(err, context.DeadlineExceeded) {
				err = ErrUpstreamTimeout
			} else if !isTimeout(err) {
				err = fmt.Errorf("%w: %w", ErrUpstream, err)
			}
			tg.vm.upstreamError(err)
			tg.err = err
			writeError(w, err, tg.model, tg.ver, tg.rid)
		},
		ErrorLog: nil,
	}
}

// serveHTTP2 is the request path of connections that arrived as h2c.
func (s *Server) serveHTTP2(w http.ResponseWriter, r *http.Request) {
	defer s.access2(&w, r)() // accesslog.go
	start := s.now()
	snap := s.snap.Load()
	rid := r.Header.Get(HeaderRequestID)
	if rid == "" {
		rid = string(s.ids.appendNext(nil))
		r.Header.Set(HeaderRequestID, rid)
	}
	mod := snap.table.Match(strBytes(r.Host), strBytes(r.URL.Path), netHeaders(r.Header))
	if mod == nil {
		s.fail2(w, snap.unmatched, ErrNoRoute, "", "", rid, start)
		return
	}
	override := r.Header.Get(HeaderVersion)
	var sticky string
	if h := mod.Config.Routing.StickyHeader; h != "" {
		sticky = r.Header.Get(h)
	}
	v, err := mod.Pick(strBytes(override), strBytes(sticky))
	if err != nil {
		s.fail2(w, snap.noVersion[mod.Index], err, mod.Name, override, rid, start)
		return
	}
	// HTTP/2 requests are not retried (gRPC bodies stream and clients own
	// their retry policy), but breakers and limits apply as on HTTP/1.1.
	a := attempt{snap: snap, mod: mod, v: v, pinned: override != "", log: accessOf2(w)}
	vm := snap.metrics[mod.Index][v.Index]
	ep, err := a.acquire(v.PickEndpoint(rand.Uint64()))
	if err != nil {
		s.fail2(w, vm, err, mod.Name, v.Name, rid, start)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), mod.Config.Timeout)
	defer cancel()
	tg := &target{ep: ep, vm: vm, model: mod.Name, ver: v.Name, rid: rid}
	ctx = context.WithValue(ctx, targetKey{}, tg)
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	ep.Begin()
	s.proxy2(sw, r.WithContext(ctx), mod, v.Name, rid, start) // the reverse proxy, sampled (tee2.go)
	a.record(ep, sw.code, tg.err)
	snap.done(ep)
	vm.observe(sw.code, s.now().Sub(start))
}

func (s *Server) fail2(w http.ResponseWriter, vm *versionMetrics, err error, model, version, rid string, start time.Time) {
	code := writeError(w, err, model, version, rid)
	vm.observe(code, s.now().Sub(start))
}

// writeError writes vane's own JSON error on the net/http side.
func writeError(w http.ResponseWriter, err error, model, version, rid string) int {
	code := statusOf(err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(HeaderRequestID, rid)
	if version != "" && !errors.Is(err, routing.ErrUnknownVersion) {
		h.Set(HeaderVersion, version)
	}
	if errors.Is(err, ErrOverloaded) {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(code)
	_, _ = w.Write(errorBody(err, model, version))
	return code
}

// statusWriter remembers the status code for metrics. It forwards Flush
// and exposes the underlying writer for http.ResponseController, which
// gRPC trailers and streaming need.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// netHeaders adapts http.Header to routing.Headers.
type netHeaders http.Header

func (h netHeaders) Peek(key string) []byte { return strBytes(http.Header(h).Get(key)) }

// strBytes views s as bytes without copying; the result must not be
// modified.
func strBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// forwardH2C carries an HTTP/1.1 request to an h2c:// endpoint through
// net/http's HTTP/2 transport, streaming the answer back.
//
// It may be the retry of an HTTP/1.1 attempt, but is not retried itself:
// the answer streams to the client as it arrives.
func (s *Server) forwardH2C(ctx *fasthttp.RequestCtx, a *attempt, ep *routing.Endpoint, vm *versionMetrics, deadline time.Time, rid []byte) {
	req := &ctx.Request
	rctx, cancel := context.WithDeadline(context.Background(), deadline)
	u, err := url.ParseRequestURI(string(req.RequestURI()))
	var hr *http.Request
	if err == nil {
		u.Scheme, u.Host = "http", ep.Addr
		hr, err = http.NewRequestWithContext(rctx, string(req.Header.Method()), u.String(), bytes.NewReader(req.Body()))
	}
	if err != nil {
		cancel()
		a.record(ep, 0, nil) // a request vane could not build says nothing of the endpoint
		a.snap.freeSlot(ep)
		s.fail1(ctx, vm, fmt.Errorf("%w: %w", ErrUpstream, err), ep.Model, ep.Version, rid)
		return
	}
	hr.ContentLength = int64(len(req.Body()))
	hr.Host = string(req.Header.Host())
	for k, v := range req.Header.All() {
		hr.Header.Add(string(k), string(v))
	}
	ep.Begin()
	resp, err := s.transports.h2.RoundTrip(hr)
	if err != nil {
		a.record(ep, 0, err)
		a.snap.done(ep)
		cancel()
		if isTimeout(err) {
			err = ErrUpstreamTimeout
		} else {
			err = fmt.Errorf("%w: %w", ErrUpstream, err)
		}
		vm.upstreamError(err)
		s.fail1(ctx, vm, err, ep.Model, ep.Version, rid)
		return
	}
	ctx.SetStatusCode(resp.StatusCode)
	for k, vs := range resp.Header {
		for _, v := range vs {
			ctx.Response.Header.Add(k, v)
		}
	}
	removeHopResponse(&ctx.Response.Header)
	ctx.Response.Header.Set(HeaderVersion, ep.Version)
	ctx.Response.Header.SetBytesV(HeaderRequestID, rid)
	start := ctx.Time()
	code := resp.StatusCode
	a.record(ep, code, nil)
	ctx.SetBodyStream(&streamBody{src: resp.Body, deadline: deadline, finish: func(err error) {
		cancel()
		_ = resp.Body.Close()
		if err != nil {
			vm.upstreamError(err)
		}
		a.snap.done(ep)
		vm.observe(code, s.now().Sub(start))
	}}, -1)
}
