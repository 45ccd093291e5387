package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// ErrProbeStatus is wrapped by the error of an HTTP probe whose answer was
// not 2xx.
var ErrProbeStatus = errors.New("health probe answered a non-2xx status")

// prober sends one kind of health check to one endpoint. A prober is used
// by one goroutine at a time and closed by it when its loop ends.
type prober interface {
	// probe sends one check, bounded by ctx, and returns nil when it
	// passed.
	probe(ctx context.Context) error
	// close releases connections.
	close()
}

// newProber picks the check of t: an empty health.path means the gRPC
// health service (grpc.health.v1.Health/Check, service ""), which is what
// protocol grpc defaults to; any other path is an HTTP GET, over h2c when
// the endpoint is h2c://. An operator who sets a path on a grpc model thus
// gets an HTTP/2 GET of that path.
func newProber(t Target) prober {
	if t.Health.Path == "" {
		return newGRPCProber(t)
	}
	return newHTTPProber(t)
}

// httpProber GETs a path and expects 2xx. It keeps its own transport so that
// its idle connection is reused from probe to probe and closed with it.
type httpProber struct {
	url       string
	transport *http.Transport
	client    *http.Client
	// shared: the transport is the Checker's, closed with it.
	shared bool
}

// maxDrain bounds how much of a probe's answer is read so that the
// connection can be reused; a larger body costs a new connection next time.
const maxDrain = 64 << 10

func newHTTPProber(t Target) *httpProber {
	tr := &http.Transport{
		// Probes go straight to the endpoint: HTTP_PROXY and friends
		// would send a sidecar's loopback probes elsewhere.
		Proxy:               nil,
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     2*t.Health.Interval + 30*time.Second,
		DisableCompression:  true,
	}
	if t.Scheme == "h2c" {
		// HTTP/2 with prior knowledge over cleartext, as the data plane
		// speaks to h2c:// endpoints.
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = p
	}
	return &httpProber{
		url:       "http://" + t.Addr + t.Health.Path,
		transport: tr,
		client: &http.Client{
			Transport: tr,
			// A redirect is an answer, and not a 2xx one.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

func (p *httpProber) probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return fmt.Errorf("probing %s: %w", p.url, err)
	}
	req.Header.Set("User-Agent", "vane-health")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("probing %s: %w", p.url, err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probing %s: %w: %d", p.url, ErrProbeStatus, resp.StatusCode)
	}
	return nil
}

func (p *httpProber) close() {
	if !p.shared {
		p.transport.CloseIdleConnections()
	}
}
