package configs

import (
	"net"
	"strings"
)

// Metrics is the optional metrics-only listener: /metrics, /healthz and
// /readyz and nothing else, for the cluster to scrape and probe while the
// admin listener (reload, pprof, breaker resets) stays on loopback.
type Metrics struct {
	// Listen is its address, host:port. Empty (the default) means no such
	// listener: /metrics is served on admin.listen only.
	Listen string `yaml:"listen"`
}

// exposure checks the metrics listener and refuses an admin listener that
// anyone beyond this host can reach without a token, unless admin.insecure
// says so on purpose.
func (v *validator) exposure(c *Config) {
	if c.Metrics.Listen != "" {
		m, ok := v.address("metrics.listen", c.Metrics.Listen)
		if ok && m.port != "0" {
			for _, other := range []struct{ path, addr string }{{"listen", c.Listen}, {"admin.listen", c.Admin.Listen}} {
				host, port, err := net.SplitHostPort(other.addr)
				if err != nil || port != m.port {
					continue
				}
				host = strings.ToLower(host)
				if host == m.host || wildcard(host) || wildcard(m.host) {
					v.add("metrics.listen", "must differ from %s (%s)", other.path, other.addr)
				}
			}
		}
	}
	for _, p := range v.probs {
		if p.Path == "admin.listen" {
			return // one problem at a time: the address itself is wrong
		}
	}
	if c.Admin.TokenFile == "" && !c.Admin.Insecure && !loopbackListen(c.Admin.Listen) {
		v.add("admin.listen", "%q can be reached beyond this host, and admin.token_file is not set: anyone who reaches it could reload the config, reset breakers and read pprof. "+
			"Keep it on 127.0.0.1 (expose metrics.listen to scrapers instead), set admin.token_file, or set admin.insecure: true to accept that", c.Admin.Listen)
	}
}

// loopbackListen reports whether a listen address binds loopback only. An
// unparsable address is left to the address check (reported there).
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
