package configs

import "time"

// Shadowing tunes the bounded queue and the workers that carry copies of
// requests to shadow versions (versions[].shadow), shared by all models.
// A full queue drops the copy and counts it; the client never waits. Both
// keys take effect at start; a reload keeps the running queue.
type Shadowing struct {
	// QueueSize is the queue's capacity in copies, >= 1. Default 1024.
	QueueSize int `yaml:"queue_size"`
	// Concurrency is the number of copies in flight to shadow versions at
	// once, over all models, >= 1. Default 16.
	Concurrency int `yaml:"concurrency"`
}

// Feedback configures the store that joins ground-truth labels (POST
// /feedback) with the predictions vane sampled, by request id.
type Feedback struct {
	// MaxEntries bounds the request ids held, >= 1. Each holds the served
	// prediction and up to three shadow predictions of one request (at
	// most 64 rows each); the oldest id is forgotten first. Default
	// 100000.
	MaxEntries int `yaml:"max_entries"`
	// TTL is how long a prediction waits for its label; a label that comes
	// later is counted as expired, > 0. Default 1h.
	TTL time.Duration `yaml:"ttl"`
}

// The defaults of the shadow and feedback keys.
const (
	DefaultShadowQueueSize   = 1024    // shadowing.queue_size
	DefaultShadowConcurrency = 16      // shadowing.concurrency
	DefaultShadowRate        = 1.0     // models[].routing.shadow_rate
	DefaultFeedbackEntries   = 100_000 // feedback.max_entries
	DefaultFeedbackTTL       = time.Hour
)

// Shadows returns the indexes of m's shadow versions, in config order.
func (m *Model) Shadows() []int {
	var out []int
	for i := range m.Versions {
		if m.Versions[i].Shadow {
			out = append(out, i)
		}
	}
	return out
}

// shadowDefaults fills in the shadow and feedback keys the file left out.
// routing.shadow_timeout defaults to the model's timeout, so it runs after
// modelDefaults.
func shadowDefaults(c *Config, idx nodeIndex) {
	setDefault(&c.Shadowing.QueueSize, idx, "shadowing.queue_size", DefaultShadowQueueSize)
	setDefault(&c.Shadowing.Concurrency, idx, "shadowing.concurrency", DefaultShadowConcurrency)
	setDefault(&c.Feedback.MaxEntries, idx, "feedback.max_entries", DefaultFeedbackEntries)
	setDefault(&c.Feedback.TTL, idx, "feedback.ttl", DefaultFeedbackTTL)
}

// modelShadowDefaults fills a model's shadow keys; its timeout is set.
func modelShadowDefaults(m *Model, idx nodeIndex, path string) {
	setDefault(&m.Routing.ShadowRate, idx, path+".routing.shadow_rate", DefaultShadowRate)
	setDefault(&m.Routing.ShadowTimeout, idx, path+".routing.shadow_timeout", m.Timeout)
}

// shadowing checks the top-level shadowing and feedback keys.
func (v *validator) shadowing(c *Config) {
	v.atLeast("shadowing.queue_size", c.Shadowing.QueueSize, 1)
	v.atLeast("shadowing.concurrency", c.Shadowing.Concurrency, 1)
	v.atLeast("feedback.max_entries", c.Feedback.MaxEntries, 1)
	v.positive("feedback.ttl", c.Feedback.TTL)
}

// shadows checks a model's shadow versions: a shadow never answers a
// client, so it can be neither the fallback nor the model's only kind of
// version, and gRPC copies are not sent yet.
func (v *validator) shadows(m *Model, p string) {
	v.unitRatio(p+".routing.shadow_rate", m.Routing.ShadowRate)
	if m.Routing.ShadowTimeout != m.Timeout || m.Timeout > 0 { // an inherited bad timeout is reported once
		v.positive(p+".routing.shadow_timeout", m.Routing.ShadowTimeout)
	}
	n := 0
	for j := range m.Versions {
		ver := &m.Versions[j]
		if !ver.Shadow {
			continue
		}
		n++
		q := item(p+".versions", j)
		if m.Protocol == ProtocolGRPC {
			v.add(q+".shadow", "protocol grpc cannot be shadowed yet (copies go over HTTP/1.1)")
		}
		for k, raw := range ver.Endpoints {
			if u, msg := parseEndpoint(raw); msg == "" && u.Scheme != "http" {
				v.add(item(q+".endpoints", k), "a shadow version's endpoints must be http:// (copies go over HTTP/1.1); got %q", raw)
			}
		}
		if m.Routing.Fallback == ver.Name {
			v.add(p+".routing.fallback", "must not name a shadow version (%q never answers clients)", ver.Name)
		}
	}
	if n > 0 && n == len(m.Versions) {
		v.add(p+".versions", "at least one version must not be a shadow: shadows never answer clients")
	}
	if n > maxShadows {
		v.add(p+".versions", "at most %d shadow versions per model, got %d", maxShadows, n)
	}
}

// maxShadows bounds the shadow versions of one model: every shadowed
// request is copied to each of them.
const maxShadows = 3

// VersionIndex returns the index of m's version named name, or -1.
func (m *Model) VersionIndex(name string) int {
	for i := range m.Versions {
		if m.Versions[i].Name == name {
			return i
		}
	}
	return -1
}
