package configs

import (
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// validator collects the rule problems of one config. Values are checked
// as they are, after defaults: a bad value is rejected, never clamped.
type validator struct {
	idx   nodeIndex // lines of the file's keys; empty for configs built in code
	probs Errors
}

// add records a problem at path, on the line of path or of its nearest
// ancestor present in the file.
func (v *validator) add(path, format string, args ...any) {
	v.probs.add(path, v.idx.line(path), format, args...)
}

// validate checks every rule and returns the problems, unsorted.
func validate(c *Config, idx nodeIndex) Errors {
	v := &validator{idx: idx}
	v.listeners(c)
	v.exposure(c)
	v.accessLog(c)
	v.positive("shutdown.drain_timeout", c.Shutdown.DrainTimeout)
	v.atLeast("sampling.queue_size", c.Sampling.QueueSize, 1)
	v.atLeast("sampling.workers", c.Sampling.Workers, 1)
	v.shadowing(c)
	v.limits(c)
	v.xds(c.XDS)
	if len(c.Models) == 0 && !c.XDS.Enabled() {
		v.add("models", "at least one model is required")
	}
	names := map[string]int{}
	matches := map[string]int{}
	for i := range c.Models {
		m, p := &c.Models[i], item("models", i)
		v.model(m, p)
		if m.Name != "" {
			if j, dup := names[m.Name]; dup {
				v.add(p+".name", "duplicate model name %q (also models[%d])", m.Name, j)
			} else {
				names[m.Name] = i
			}
		}
		if key, ok := matchKey(m.Match); ok {
			if j, dup := matches[key]; dup {
				v.add(p+".match", "same matchers as models[%d] (%q), so this model can never be chosen", j, c.Models[j].Name)
			} else {
				matches[key] = i
			}
		}
	}
	return v.probs
}

// listeners checks both addresses and that they cannot collide.
func (v *validator) listeners(c *Config) {
	if c.Admin.GuardReads && c.Admin.TokenFile == "" {
		v.add("admin.guard_reads", "needs admin.token_file: there is no token to guard with")
	}
	data, dataOK := v.address("listen", c.Listen)
	admin, adminOK := v.address("admin.listen", c.Admin.Listen)
	if !dataOK || !adminOK || data.port != admin.port || data.port == "0" {
		return // port 0 picks a free port, so two of them never collide
	}
	if data.host == admin.host || wildcard(data.host) || wildcard(admin.host) {
		v.add("admin.listen", "must differ from listen (%s): the admin port is never the data port", c.Listen)
	}
}

type hostPort struct{ host, port string }

// address checks a listen address: host:port with a numeric port (0
// picks a free one); an empty host listens on every interface.
func (v *validator) address(path, s string) (hostPort, bool) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.add(path, "must be host:port, such as \"127.0.0.1:8080\"; got %q", s)
		return hostPort{}, false
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.add(path, "port must be a number from 0 to 65535, got %q", port)
		return hostPort{}, false
	}
	n, _ := strconv.Atoi(port)
	return hostPort{host: strings.ToLower(host), port: strconv.Itoa(n)}, true
}

func wildcard(host string) bool {
	return host == "" || host == "0.0.0.0" || host == "::"
}

// model checks one model.
func (v *validator) model(m *Model, p string) {
	v.name(p+".name", m.Name)
	v.match(&m.Match, p+".match")
	if !m.Protocol.Known() {
		v.add(p+".protocol", "must be one of %s; got %q", protocolList(), m.Protocol)
	}
	v.positive(p+".timeout", m.Timeout)
	v.versions(m, p+".versions")
	v.routing(m, p+".routing")
	v.shadows(m, p)
	v.health(m, p+".health")
	v.breaker(&m.CircuitBreaker, p+".circuit_breaker")
	v.retry(&m.Retry, p+".retry")
	v.atLeast(p+".limits.endpoint_concurrency", m.Limits.EndpointConcurrency, 0)
	v.monitor(m, p+".monitor")
	v.rollout(m, p+".rollout")
}

// match checks a model's matchers.
func (v *validator) match(mt *Match, p string) {
	if mt.PathPrefix == "" && mt.Host == "" && len(mt.Headers) == 0 {
		v.add(p, "must set at least one of path_prefix, host, headers")
	}
	if mt.PathPrefix != "" && !strings.HasPrefix(mt.PathPrefix, "/") {
		v.add(p+".path_prefix", "must start with \"/\", got %q", mt.PathPrefix)
	}
	keys := make([]string, 0, len(mt.Headers))
	for k := range mt.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !isToken(k) {
			v.add(p+".headers."+k, "%q is not a valid HTTP header name", k)
		}
		if !isHeaderValue(mt.Headers[k]) {
			v.add(p+".headers."+k, "value %q has control characters", mt.Headers[k])
		}
	}
}

// matchKey identifies what a Match selects; two models with the same key
// compete for the same requests and the later can never win. ok is false
// when the Match has no matcher.
func matchKey(mt Match) (key string, ok bool) {
	if mt.PathPrefix == "" && mt.Host == "" && len(mt.Headers) == 0 {
		return "", false
	}
	parts := []string{mt.PathPrefix, strings.ToLower(mt.Host)}
	headers := make([]string, 0, len(mt.Headers))
	for k, val := range mt.Headers {
		headers = append(headers, strings.ToLower(k)+":"+val)
	}
	sort.Strings(headers)
	return strings.Join(append(parts, headers...), "\x00"), true
}

// routing checks how a model picks versions when some are down.
func (v *validator) routing(m *Model, p string) {
	r := m.Routing
	switch r.OnUnhealthy {
	case OnUnhealthyRedistribute, OnUnhealthyFallback, OnUnhealthyFail:
	default:
		v.add(p+".on_unhealthy", "must be one of redistribute, fallback, fail; got %q", r.OnUnhealthy)
	}
	if r.OnUnhealthy == OnUnhealthyFallback && r.Fallback == "" {
		v.add(p+".fallback", "is required when on_unhealthy is fallback")
	}
	if r.Fallback != "" && !m.hasVersion(r.Fallback) {
		v.add(p+".fallback", "must name a version of this model (%s); got %q", m.versionList(), r.Fallback)
	}
	if r.StickyHeader != "" && !isToken(r.StickyHeader) {
		v.add(p+".sticky_header", "must be a valid HTTP header name, got %q", r.StickyHeader)
	}
}

// health checks the active probes.
func (v *validator) health(m *Model, p string) {
	h := m.Health
	switch {
	case h.Path != "" && !strings.HasPrefix(h.Path, "/"):
		v.add(p+".path", "must start with \"/\", got %q", h.Path)
	case h.Path == "" && m.Protocol.Known() && m.Protocol != ProtocolGRPC:
		v.add(p+".path", "must not be empty for protocol %s (only grpc models are probed without a path)", m.Protocol)
	}
	v.positive(p+".interval", h.Interval)
	v.positive(p+".timeout", h.Timeout)
	if h.Interval > 0 && h.Timeout > h.Interval {
		v.add(p+".timeout", "must be <= health.interval (%s), got %s", h.Interval, h.Timeout)
	}
	v.atLeast(p+".healthy_threshold", h.HealthyThreshold, 1)
	v.atLeast(p+".unhealthy_threshold", h.UnhealthyThreshold, 1)
}

// breaker checks the circuit breaker.
func (v *validator) breaker(b *CircuitBreaker, p string) {
	if !(b.FailureRatio > 0 && b.FailureRatio <= 1) {
		v.add(p+".failure_ratio", "must be > 0 and <= 1, got %s", fmtFloat(b.FailureRatio))
	}
	v.atLeast(p+".min_requests", b.MinRequests, 1)
	v.positive(p+".window", b.Window)
	v.positive(p+".open_for", b.OpenFor)
	v.atLeast(p+".half_open_requests", b.HalfOpenRequests, 1)
	v.statuses(p+".failure_statuses", b.FailureStatuses)
}

// retry checks retries and their budget.
func (v *validator) retry(r *Retry, p string) {
	v.atLeast(p+".attempts", r.Attempts, 1)
	v.unitRatio(p+".budget_ratio", r.BudgetRatio)
	v.atLeast(p+".min_concurrent", r.MinConcurrent, 0)
	v.statuses(p+".on_statuses", r.OnStatuses)
}

// statuses checks a list of HTTP status codes: each in 100..599, no
// duplicates. An empty list is allowed: no status matches.
func (v *validator) statuses(p string, codes []int) {
	seen := map[int]int{}
	for i, code := range codes {
		q := item(p, i)
		if code < 100 || code > 599 {
			v.add(q, "must be an HTTP status from 100 to 599, got %d", code)
			continue
		}
		if j, dup := seen[code]; dup {
			v.add(q, "duplicate status %d (also %s)", code, item(lastKey(p), j))
			continue
		}
		seen[code] = i
	}
}

func (v *validator) positive(path string, d time.Duration) {
	if d <= 0 {
		v.add(path, "must be > 0, got %s", d)
	}
}

// lastKey is the last key of a path, for messages:
// "models[0].retry.on_statuses" gives "on_statuses".
func lastKey(path string) string {
	return path[strings.LastIndexByte(path, '.')+1:]
}

// nonNegative requires d >= 0; what 0 means is the caller's to say.
func (v *validator) nonNegative(path string, d time.Duration, zero string) {
	if d < 0 {
		v.add(path, "must be >= 0 (0 %s), got %s", zero, d)
	}
}

func (v *validator) atLeast(path string, n, least int) {
	if n < least {
		v.add(path, "must be >= %d, got %d", least, n)
	}
}

// unitRatio requires f in [0,1]; NaN fails.
func (v *validator) unitRatio(path string, f float64) {
	if !(f >= 0 && f <= 1) {
		v.add(path, "must be >= 0 and <= 1, got %s", fmtFloat(f))
	}
}

func (m *Model) hasVersion(name string) bool {
	return slices.ContainsFunc(m.Versions, func(ver Version) bool { return ver.Name == name })
}

// versionList renders the model's version names for messages.
func (m *Model) versionList() string {
	names := make([]string, len(m.Versions))
	for i, ver := range m.Versions {
		names[i] = strconv.Quote(ver.Name)
	}
	if len(names) == 0 {
		return "it has none"
	}
	return strings.Join(names, ", ")
}

func fmtFloat(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// protocolList renders Protocols for messages.
func protocolList() string {
	names := make([]string, 0, 7)
	for _, p := range Protocols() {
		names = append(names, string(p))
	}
	return strings.Join(names, ", ")
}
