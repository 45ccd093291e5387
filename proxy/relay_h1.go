package proxy

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/vaneproxy/vane/proxy/h2relay"
)

// relayError maps how h2relay says a stream failed onto vane's errors,
// which decide the status, the breaker's verdict and the retry.
func relayError(err error) error {
	switch {
	case err == nil:
		return nil
	case clientFault(err) || errors.Is(err, ErrUpstream) || errors.Is(err, ErrUpstreamTimeout):
		return err // vane's own already
	case errors.Is(err, h2relay.ErrTimeout):
		return fmt.Errorf("%w: %w", ErrUpstreamTimeout, err)
	case errors.Is(err, h2relay.ErrClientReset), errors.Is(err, h2relay.ErrClientGone):
		return fmt.Errorf("%w: %w", ErrClientGone, err)
	case errors.Is(err, h2relay.ErrRequestTooLarge):
		return fmt.Errorf("%w: %w", ErrBodyRefused, err)
	case errors.Is(err, h2relay.ErrStreamProtocol):
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	default:
		return fmt.Errorf("%w: %w", ErrUpstream, err)
	}
}

// maxRelayedBody caps the request body an HTTP/2 client sends to an
// http:// endpoint, as fasthttp's MaxRequestBodySize does on HTTP/1.1.
const maxRelayedBody = 64 << 20

// serveRelayH1 carries an HTTP/2 stream to the http:// endpoint its
// exchange admitted, over fasthttp: the request body is read whole, the
// attempts are retried like HTTP/1.1 ones, and the answer (read whole,
// within limits.max_response_bytes) is written back on the stream.
func (s *Server) serveRelayH1(st *h2relay.ServerStream, rs *relayStream, method, authority, path string, length int64) {
	x := &rs.x
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.Header.SetHost(authority)
	for _, f := range rs.hdr {
		req.Header.Add(f.Name, f.Value)
	}
	body, err := io.ReadAll(io.LimitReader(st, maxRelayedBody+1))
	switch {
	case errors.Is(err, h2relay.ErrTimeout):
		err = fmt.Errorf("%w: %w", ErrClientTimeout, err)
	case err != nil:
		err = fmt.Errorf("%w: %w", ErrClientBody, err)
	case len(body) > maxRelayedBody:
		err = fmt.Errorf("%w: over %d bytes", ErrBodyRefused, maxRelayedBody)
	case length >= 0 && int64(len(body)) != length:
		err = fmt.Errorf("%w: %d bytes of a content-length of %d", ErrClientBody, len(body), length)
	}
	if err != nil {
		x.settle(0, nil) // the client's doing: nothing of the endpoint
		x.release()
		x.ep = nil
		rs.answerLocal(st, rs.refusal(err, ""))
		return
	}
	req.SetBody(body)
	rs.RequestData(body)
	resp.Header.DisableNormalizing() // field names go out lower case, as HTTP/2 wants
	var status int
	for {
		hc := x.snap.upstreams[x.ep.ID].shared
		_ = resp.CloseBodyStream()
		resp.Reset()
		resp.StreamBody = true
		err = hc.DoDeadline(req, resp, x.deadline)
		status = 0
		if err != nil {
			err = classify(err, clientSide{bodyLen: int64(len(body))})
		} else {
			status = resp.StatusCode()
		}
		x.settle(status, err)
		if !x.retry(status, err) {
			break // the answer's endpoint is released when it is sent
		}
		// Another endpoint, if one admits the request; else the answer
		// is this attempt's, and its endpoint stays held until then.
		prev := x.ep
		ok, _ := x.admit()
		if ok && x.snap.upstreams[x.ep.ID].hc == nil { // an h2c:// endpoint is not tried from here
			x.settle(0, nil)
			x.release()
			ok = false
		}
		if !ok {
			x.ep = prev
			break
		}
		x.snap.done(prev)
	}
	if err != nil {
		x.release()
		x.ep = nil
		rs.answerLocal(st, rs.refusal(err, ""))
		return
	}
	rs.status = status
	h := make([]hpack.HeaderField, 0, 8)
	for k, v := range resp.Header.All() {
		name := string(k)
		switch name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
			"x-vane-version", "x-request-id", "content-length":
			continue
		}
		h = append(h, hpack.HeaderField{Name: strings.ToLower(name), Value: string(v)})
		if rs.smp != nil && name == "content-type" {
			rs.respType = string(v)
		}
	}
	h = append(h, rs.responseHeader()...)
	rs.ttfb = s.now().Sub(x.start)
	o := h2relay.Outcome{Status: status, ReqBytes: int64(len(body)), HeadersSent: true}
	o.RespBytes, o.Err = rs.copyAnswer(st, resp, h)
	x.release()
	x.ep = nil // released: Done has nothing to give back
	rs.Done(o)
}

// copyAnswer writes the answer's headers and streams its body to the
// client as it arrives. A body that breaks off resets the stream; the
// error says whose fault it was.
func (rs *relayStream) copyAnswer(st *h2relay.ServerStream, resp *fasthttp.Response, h []hpack.HeaderField) (int64, error) {
	body := resp.BodyStream()
	if err := st.WriteHeaders(resp.StatusCode(), h, body == nil); err != nil || body == nil {
		if err != nil {
			return 0, h2relay.ErrClientGone
		}
		return 0, nil
	}
	bp := streamBufPool.Get().(*[]byte)
	defer streamBufPool.Put(bp)
	var n int64
	for {
		k, rerr := body.Read(*bp)
		if k > 0 {
			rs.ResponseData((*bp)[:k])
			if _, werr := st.Write((*bp)[:k]); werr != nil {
				st.Reset(http2.ErrCodeCancel)
				if errors.Is(werr, h2relay.ErrTimeout) { // a client that does not read
					return n, fmt.Errorf("%w: %w", ErrClientGone, werr)
				}
				return n, h2relay.ErrClientGone
			}
			n += int64(k)
		}
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			st.Reset(http2.ErrCodeInternal)
			err := classify(rerr, clientSide{bodyLen: -1})
			rs.x.vm.upstreamError(err)
			return n, err
		}
	}
}

// answerLocal writes vane's own answer on a stream it took over, and ends
// the stream's exchange (refusal counted it).
func (rs *relayStream) answerLocal(st *h2relay.ServerStream, resp *h2relay.Response) {
	if st.WriteHeaders(resp.Status, resp.Header, len(resp.Body) == 0) == nil && len(resp.Body) > 0 {
		_, _ = st.Write(resp.Body)
	}
	rs.end()
}
