package configs

import (
	"net/netip"
	"strings"
)

// DefaultMaxResponseBytes is models[].limits.max_response_bytes when
// absent: 64 MiB. Answers vane buffers (sized answers on HTTP/1.1, and every
// answer to an HTTP/1.0 client) larger than this get 502; streamed answers
// (SSE, chunked bodies of unknown length, h2c) are never buffered and not
// capped.
const DefaultMaxResponseBytes = 64 << 20

// The supported scale of one config: a reload stays near-linear (well under
// a second) up to these, and validation rejects configs beyond them.
const (
	MaxModels           = 10000 // models
	MaxVersionsPerModel = 10000 // models[].versions
	MaxEndpoints        = 20000 // endpoints over all models and versions
)

// TrustedProxies parses the top-level trusted_proxies list: the peers whose
// X-Forwarded-For/-Proto/-Host vane keeps. A bare address is a one-address
// prefix. Entries that do not parse are skipped (validation rejects them).
func TrustedProxies(c *Config) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, ok := parseTrusted(s); ok {
			out = append(out, p)
		}
	}
	return out
}

func parseTrusted(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// limits checks trusted_proxies, limits.max_response_bytes and the
// supported scale.
func (v *validator) limits(c *Config) {
	for i, s := range c.TrustedProxies {
		if _, ok := parseTrusted(s); !ok {
			v.add(item("trusted_proxies", i), "must be a CIDR such as \"10.0.0.0/8\" or an IP address; got %q", s)
		}
	}
	if len(c.Models) > MaxModels {
		v.add("models", "%d models; vane supports at most %d per config", len(c.Models), MaxModels)
	}
	endpoints := 0
	for i := range c.Models {
		m, p := &c.Models[i], item("models", i)
		if m.Limits.MaxResponseBytes < 1 {
			v.add(p+".limits.max_response_bytes", "must be >= 1, got %d", m.Limits.MaxResponseBytes)
		}
		if len(m.Versions) > MaxVersionsPerModel {
			v.add(p+".versions", "%d versions; vane supports at most %d per model", len(m.Versions), MaxVersionsPerModel)
		}
		for j := range m.Versions {
			endpoints += len(m.Versions[j].Endpoints)
		}
	}
	if endpoints > MaxEndpoints {
		v.add("models", "%d endpoints in all; vane supports at most %d per config", endpoints, MaxEndpoints)
	}
}
