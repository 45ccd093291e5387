package configs

import "strings"

// XDS, when Server is set, makes serve take its models from a vane control
// plane (or any xDS server speaking vane's mapping) over ADS instead of
// from the file. Models the file lists are served until the first update
// arrives (or the last good one persisted under state_dir is loaded).
type XDS struct {
	// Server is the control plane's host:port. A comma-separated list
	// ("cp-a:18000,cp-b:18000") names fail-over servers, tried in order
	// whenever the current one cannot be reached. Empty (the default)
	// means models come from the file.
	Server string `yaml:"server"`
	// NodeID is the xDS node id the sidecar presents. Default: the host
	// name (the pod name in Kubernetes).
	NodeID string `yaml:"node_id"`
	// Cluster is the xDS node cluster: the control plane group whose
	// models this sidecar serves. Required when server is set.
	Cluster string `yaml:"cluster"`
	// TLS, when set, secures the connection (mutual TLS: the client
	// presents cert_file and verifies the server against ca_file).
	TLS TLS `yaml:"tls"`
}

// TLS names PEM files for mutual TLS. Either all three are set or none.
type TLS struct {
	// CAFile verifies the peer's certificate.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are this side's certificate and key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether any TLS file is set.
func (t TLS) Enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// Enabled reports whether models come from an xDS server.
func (x XDS) Enabled() bool { return x.Server != "" }

// Servers splits Server into its addresses, in fail-over order.
func (x XDS) Servers() []string {
	var out []string
	for _, s := range strings.Split(x.Server, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// xds checks the xds section; nothing when it is not enabled.
func (v *validator) xds(x XDS) {
	if x.Server == "" {
		if x.Cluster != "" || x.NodeID != "" || x.TLS.Enabled() {
			v.add("xds.server", "is required when any other xds key is set")
		}
		return
	}
	servers := x.Servers()
	if len(servers) == 0 {
		v.add("xds.server", "must name at least one host:port, got %q", x.Server)
	}
	for _, s := range servers {
		if _, ok := v.address("xds.server", s); !ok {
			break
		}
	}
	if x.Cluster == "" {
		v.add("xds.cluster", "is required when xds.server is set: it names the control plane group to join")
	}
	v.tls("xds.tls", x.TLS)
}

// tls checks that a TLS section sets all of its files or none.
func (v *validator) tls(path string, t TLS) {
	if !t.Enabled() {
		return
	}
	for _, f := range [][2]string{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f[1] == "" {
			v.add(path+"."+f[0], "is required when any of %s is set (mutual TLS needs all three)", path)
		}
	}
}
