package routing

import (
	"cmp"
	"slices"
	"strings"
)

// Headers gives request header values by name; a missing header reads as
// empty. *fasthttp.RequestHeader satisfies it. Peek must not allocate for
// Match to stay allocation-free.
type Headers interface {
	Peek(key string) []byte
}

// matcher is one model's compiled Match config.
type matcher struct {
	model   *Model
	prefix  string
	host    string // lower case, no port; "" matches any host
	headers []headerMatch
}

type headerMatch struct {
	key, value string
}

// matchOrder compiles the models' matchers in priority order: longest
// path_prefix first, then those with a host, then those with more headers,
// then config order. Match takes the first that holds, so the scan stops at
// the most specific model.
func matchOrder(models []*Model) []matcher {
	order := make([]matcher, 0, len(models))
	for _, m := range models {
		mc := m.Config.Match
		mt := matcher{model: m, prefix: mc.PathPrefix, host: strings.ToLower(stripPort(mc.Host))}
		for k, v := range mc.Headers {
			mt.headers = append(mt.headers, headerMatch{key: k, value: v})
		}
		// Map order is random; a fixed order keeps Match's work the same
		// from one build to the next.
		slices.SortFunc(mt.headers, func(a, b headerMatch) int { return cmp.Compare(a.key, b.key) })
		order = append(order, mt)
	}
	slices.SortStableFunc(order, func(a, b matcher) int {
		if c := cmp.Compare(len(b.prefix), len(a.prefix)); c != 0 {
			return c
		}
		if (a.host != "") != (b.host != "") {
			if a.host != "" {
				return -1
			}
			return 1
		}
		return cmp.Compare(len(b.headers), len(a.headers))
	})
	return order
}

// Match returns the model that serves a request, or nil when none does.
// host is the Host header (a ":port" suffix is ignored, case does not
// matter), path the request path, h the request headers (may be nil when no
// model matches on headers). Among the models whose matchers all hold, the
// longest path_prefix wins, then one that names a host, then the one with
// more headers, then the first configured. Match allocates nothing.
func (t *Table) Match(host, path []byte, h Headers) *Model {
	host = stripPortBytes(host)
	for i := range t.order {
		if t.order[i].holds(host, path, h) {
			return t.order[i].model
		}
	}
	return nil
}

func (mt *matcher) holds(host, path []byte, h Headers) bool {
	if len(path) < len(mt.prefix) || string(path[:len(mt.prefix)]) != mt.prefix {
		return false
	}
	if mt.host != "" && !equalFoldASCII(host, mt.host) {
		return false
	}
	if len(mt.headers) > 0 && h == nil {
		return false
	}
	for _, hm := range mt.headers {
		if string(h.Peek(hm.key)) != hm.value {
			return false
		}
	}
	return true
}

// equalFoldASCII is strings.EqualFold for a byte slice against a lower-case
// string, without converting (and so allocating) the slice. Host names on
// the wire are ASCII (IDNs travel as punycode).
func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// stripPortBytes drops a trailing ":port" from a Host value, minding IPv6
// literals ("[::1]:8080" → "[::1]").
func stripPortBytes(host []byte) []byte {
	for i := len(host) - 1; i >= 0; i-- {
		switch host[i] {
		case ':':
			return host[:i]
		case ']':
			return host
		}
	}
	return host
}

func stripPort(host string) string {
	return string(stripPortBytes([]byte(host)))
}
