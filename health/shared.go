package health

import (
	"net"
	"net/http"
	"time"
)

// probeTransports carry every HTTP probe of one Checker: endpoints on one
// host:port share its connections. With a transport per endpoint, 10,000
// models in front of one backend kept 10,000 probe connections open (and
// ~1.4 GB); shared, the connections a host gets are bounded by how many
// probes overlap, at most maxProbeConns.
type probeTransports struct {
	h1, h2c *http.Transport
}

// maxProbeConns bounds the connections the probes open to one host:port;
// probes beyond wait for one within their timeout.
const maxProbeConns = 64

func newProbeTransports() *probeTransports {
	mk := func(h2c bool) *http.Transport {
		tr := &http.Transport{
			// Probes go straight to the endpoint: HTTP_PROXY and friends
			// would send a sidecar's loopback probes elsewhere.
			Proxy:               nil,
			DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        0, // no total cap; per host below
			MaxIdleConnsPerHost: 8,
			MaxConnsPerHost:     maxProbeConns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		if h2c {
			p := new(http.Protocols)
			p.SetUnencryptedHTTP2(true)
			tr.Protocols = p
		}
		return tr
	}
	return &probeTransports{h1: mk(false), h2c: mk(true)}
}

// newProber is newProber on the Checker's shared transports.
func (c *Checker) newProber(t Target) prober {
	if t.Health.Path == "" {
		return newGRPCProber(t)
	}
	tr := c.probes.h1
	if t.Scheme == "h2c" {
		tr = c.probes.h2c
	}
	p := newHTTPProber(t)
	p.transport, p.shared = tr, true
	p.client.Transport = tr
	return p
}

func (p *probeTransports) close() {
	p.h1.CloseIdleConnections()
	p.h2c.CloseIdleConnections()
}
