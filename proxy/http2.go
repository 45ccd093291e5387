package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
)

// transports carries HTTP/1.1 requests to h2c:// endpoints through
// net/http's HTTP/2 transport (HTTP/2 clients' streams go through the
// frame relay, relay.go). It does not consult proxy environment
// variables: vane dials only configured endpoints.
type transports struct {
	h2 *http2.Transport
}

func newTransports() *transports {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &transports{
		h2: &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			ReadIdleTimeout: 30 * time.Second,
		},
	}
}

// strBytes views s as bytes without copying; the result must not be
// modified.
func strBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// forwardH2C carries an HTTP/1.1 request to the h2c:// endpoint x
// admitted, through net/http's HTTP/2 transport, streaming the answer back.
//
// It may be the retry of an HTTP/1.1 attempt, but is not retried itself:
// the answer streams to the client as it arrives.
func (s *Server) forwardH2C(ctx *fasthttp.RequestCtx, x *exchange) {
	req := &ctx.Request
	ep := x.ep
	rctx, cancel := context.WithDeadline(context.Background(), x.deadline)
	u, err := url.ParseRequestURI(string(req.RequestURI()))
	var hr *http.Request
	if err == nil {
		u.Scheme, u.Host = "http", ep.Addr
		hr, err = http.NewRequestWithContext(rctx, string(req.Header.Method()), u.String(), bytes.NewReader(req.Body()))
	}
	if err != nil {
		cancel()
		x.settle(0, nil) // a request vane could not build says nothing of the endpoint
		x.release()
		s.fail1(ctx, x, fmt.Errorf("%w: %w", ErrBadRequest, err))
		return
	}
	hr.ContentLength = int64(len(req.Body()))
	hr.Host = string(req.Header.Host())
	for k, v := range req.Header.All() {
		hr.Header.Add(string(k), string(v))
	}
	resp, err := s.transports.h2.RoundTrip(hr)
	if err != nil {
		cancel()
		err = classify(err, clientSide{bodyLen: hr.ContentLength})
		x.settle(0, err)
		x.release()
		s.fail1(ctx, x, err)
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
	ctx.Response.Header.SetBytesV(HeaderRequestID, x.rid)
	code := resp.StatusCode
	x.settle(code, nil)
	if !req.Header.IsHTTP11() {
		// An HTTP/1.0 client cannot take a chunked answer: read it whole,
		// within the cap, and send it sized.
		max := x.mod.Config.Limits.MaxResponseBytes
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
		_ = resp.Body.Close()
		cancel()
		x.release()
		if rerr == nil && len(body) > max {
			rerr = ErrResponseTooLarge
		}
		if rerr != nil {
			rerr = classify(rerr, clientSide{bodyLen: -1})
			x.vm.upstreamError(rerr)
			s.fail1(ctx, x, rerr)
			return
		}
		ctx.SetBody(body)
		x.finish(code, s.now())
		return
	}
	vm, end := x.vm, x.detach()
	ctx.SetBodyStream(&streamBody{src: resp.Body, deadline: x.deadline, finish: func(err error) {
		cancel()
		_ = resp.Body.Close()
		if err != nil {
			vm.upstreamError(err)
		}
		end(code)
	}}, -1)
}
