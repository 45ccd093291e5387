package configs

import (
	"math"
	"net/url"
	"strconv"
	"strings"
)

// versions checks a model's versions, their weights and endpoints.
func (v *validator) versions(m *Model, p string) {
	if len(m.Versions) == 0 {
		v.add(p, "at least one version is required")
		return
	}
	seen := map[string]int{}
	positive := false
	for j := range m.Versions {
		ver, q := &m.Versions[j], item(p, j)
		v.name(q+".name", ver.Name)
		if ver.Name != "" {
			if k, dup := seen[ver.Name]; dup {
				v.add(q+".name", "duplicate version name %q (also versions[%d])", ver.Name, k)
			} else {
				seen[ver.Name] = j
			}
		}
		switch w := ver.Weight; {
		case math.IsNaN(w) || math.IsInf(w, 0):
			v.add(q+".weight", "must be a finite number, got %s", fmtFloat(w))
		case w < 0:
			v.add(q+".weight", "must be >= 0, got %s", fmtFloat(w))
		case w > 0 && !ver.Shadow: // a shadow's weight is ignored
			positive = true
		}
		v.endpoints(m, ver, q+".endpoints")
	}
	if !positive {
		v.add(p, "at least one version must have weight > 0 (shadows' weights do not count)")
	}
}

// endpoints checks one version's upstream URLs.
func (v *validator) endpoints(m *Model, ver *Version, p string) {
	if len(ver.Endpoints) == 0 {
		v.add(p, "at least one endpoint is required")
		return
	}
	seen := map[string]int{}
	for k, raw := range ver.Endpoints {
		q := item(p, k)
		u, msg := parseEndpoint(raw)
		if msg != "" {
			v.add(q, "%s; got %q", msg, raw)
			continue
		}
		key := u.Scheme + "://" + strings.ToLower(u.Host)
		if first, dup := seen[key]; dup {
			v.add(q, "duplicate endpoint %q (also endpoints[%d])", raw, first)
			continue
		}
		seen[key] = k
		if m.Protocol == ProtocolGRPC && u.Scheme != "h2c" {
			v.add(q, "protocol grpc needs an h2c:// endpoint (gRPC does not run over HTTP/1.1); got %q", raw)
		}
	}
}

// parseEndpoint parses http://host:port or h2c://host:port; msg says what
// is wrong otherwise.
func parseEndpoint(raw string) (u *url.URL, msg string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Scheme == "" || u.Opaque != "":
		return nil, "must be a URL such as http://127.0.0.1:8501"
	case u.Scheme != "http" && u.Scheme != "h2c":
		return nil, "scheme must be http (HTTP/1.1) or h2c (HTTP/2 cleartext)"
	case u.User != nil:
		return nil, "must not hold user info"
	case u.Hostname() == "":
		return nil, "must name a host"
	case u.Port() == "":
		return nil, "must give the port explicitly, as in http://host:8080"
	case u.Path != "" && u.Path != "/":
		return nil, "must not have a path (requests keep their own path)"
	case u.RawQuery != "" || u.ForceQuery:
		return nil, "must not have a query"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, "must not have a fragment"
	}
	if n, err := strconv.ParseUint(u.Port(), 10, 16); err != nil || n == 0 {
		return nil, "port must be a number from 1 to 65535"
	}
	return u, ""
}

// name checks a model or version name against [a-z0-9][a-z0-9._-]*.
func (v *validator) name(path, s string) {
	if s == "" {
		v.add(path, "is required")
		return
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			v.add(path, "must match [a-z0-9][a-z0-9._-]* (lower case letters, digits, then also . _ -); got %q", s)
			return
		}
	}
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2), the syntax
// of header names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isHeaderValue reports whether s can be sent as a header value: no
// control characters other than tab.
func isHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
