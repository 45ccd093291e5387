package configs

import "time"

// The defaults, one per key; the field comments in config.go document the
// same values. A default fills a key only when the file does not set it (or
// sets it to null): an explicit value, zero included, is kept and then
// validated, never replaced.
const (
	DefaultListen      = "127.0.0.1:8080"
	DefaultAdminListen = "127.0.0.1:9901"
	DefaultDrain       = 30 * time.Second

	DefaultProtocol    = ProtocolRaw
	DefaultTimeout     = 30 * time.Second
	DefaultOnUnhealthy = OnUnhealthyRedistribute
	DefaultWeight      = 1.0

	DefaultHealthInterval     = 5 * time.Second
	DefaultHealthTimeout      = 1 * time.Second
	DefaultHealthyThreshold   = 2
	DefaultUnhealthyThreshold = 3

	DefaultFailureRatio     = 0.5
	DefaultMinRequests      = 20
	DefaultBreakerWindow    = 30 * time.Second
	DefaultOpenFor          = 10 * time.Second
	DefaultHalfOpenRequests = 5

	DefaultAttempts    = 2
	DefaultBudgetRatio = 0.2

	DefaultSampleRate   = 1.0
	DefaultMaxBodyBytes = 1 << 20
	DefaultWindow       = 1000
	DefaultWarmup       = 1000
)

// DefaultHealthPath is the health.path a model gets when it sets none:
//
//	kserve-v1, tfserving  /v1/models/{model}
//	kserve-v2             /v2/models/{model}/ready
//	mlflow                /ping
//	openai                /health
//	grpc                  "" (the grpc.health.v1 service is probed instead)
//	raw                   /
//
// It returns "" for an unknown protocol.
func DefaultHealthPath(p Protocol, model string) string {
	switch p {
	case ProtocolKServeV1, ProtocolTFServing:
		return "/v1/models/" + model
	case ProtocolKServeV2:
		return "/v2/models/" + model + "/ready"
	case ProtocolMLflow:
		return "/ping"
	case ProtocolOpenAI:
		return "/health"
	case ProtocolRaw:
		return "/"
	}
	return ""
}

// applyDefaults fills in every key the file left out; idx tells which keys
// it set.
func applyDefaults(c *Config, idx nodeIndex) {
	setDefault(&c.Listen, idx, "listen", DefaultListen)
	setDefault(&c.Admin.Listen, idx, "admin.listen", DefaultAdminListen)
	setDefault(&c.Shutdown.DrainTimeout, idx, "shutdown.drain_timeout", DefaultDrain)
	for i := range c.Models {
		modelDefaults(&c.Models[i], idx, item("models", i))
	}
}

func modelDefaults(m *Model, idx nodeIndex, path string) {
	at := func(key string) string { return path + "." + key }
	setDefault(&m.Protocol, idx, at("protocol"), DefaultProtocol)
	setDefault(&m.Timeout, idx, at("timeout"), DefaultTimeout)
	setDefault(&m.Routing.OnUnhealthy, idx, at("routing.on_unhealthy"), DefaultOnUnhealthy)
	for j := range m.Versions {
		setDefault(&m.Versions[j].Weight, idx, item(at("versions"), j)+".weight", DefaultWeight)
	}

	h := &m.Health
	setDefault(&h.Path, idx, at("health.path"), DefaultHealthPath(m.Protocol, m.Name))
	setDefault(&h.Interval, idx, at("health.interval"), DefaultHealthInterval)
	setDefault(&h.Timeout, idx, at("health.timeout"), DefaultHealthTimeout)
	setDefault(&h.HealthyThreshold, idx, at("health.healthy_threshold"), DefaultHealthyThreshold)
	setDefault(&h.UnhealthyThreshold, idx, at("health.unhealthy_threshold"), DefaultUnhealthyThreshold)

	b := &m.CircuitBreaker
	setDefault(&b.FailureRatio, idx, at("circuit_breaker.failure_ratio"), DefaultFailureRatio)
	setDefault(&b.MinRequests, idx, at("circuit_breaker.min_requests"), DefaultMinRequests)
	setDefault(&b.Window, idx, at("circuit_breaker.window"), DefaultBreakerWindow)
	setDefault(&b.OpenFor, idx, at("circuit_breaker.open_for"), DefaultOpenFor)
	setDefault(&b.HalfOpenRequests, idx, at("circuit_breaker.half_open_requests"), DefaultHalfOpenRequests)

	setDefault(&m.Retry.Attempts, idx, at("retry.attempts"), DefaultAttempts)
	setDefault(&m.Retry.BudgetRatio, idx, at("retry.budget_ratio"), DefaultBudgetRatio)

	mon := &m.Monitor
	setDefault(&mon.SampleRate, idx, at("monitor.sample_rate"), DefaultSampleRate)
	setDefault(&mon.MaxBodyBytes, idx, at("monitor.max_body_bytes"), DefaultMaxBodyBytes)
	setDefault(&mon.Window, idx, at("monitor.window"), DefaultWindow)
	if !idx.has(at("monitor.reference.warmup")) && mon.Reference.File == "" && mon.Reference.Version == "" {
		mon.Reference.Warmup = DefaultWarmup
	}
}

// setDefault stores def in *dst unless the file set path.
func setDefault[T any](dst *T, idx nodeIndex, path string, def T) {
	if !idx.has(path) {
		*dst = def
	}
}
