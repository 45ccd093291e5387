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

	DefaultQueueSize       = 4096 // sampling.queue_size
	DefaultSamplingWorkers = 1    // sampling.workers

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

	DefaultAttempts      = 2
	DefaultBudgetRatio   = 0.2
	DefaultMinConcurrent = 3 // retry.min_concurrent

	// DefaultEndpointConcurrency (limits.endpoint_concurrency) is 0: no
	// limit.
	DefaultEndpointConcurrency = 0

	DefaultSampleRate   = 1.0
	DefaultMaxBodyBytes = 1 << 20
	DefaultWindow       = 1000
	DefaultWarmup       = 10000
	DefaultMaxAge       = 5 * time.Minute // monitor.max_age
	// DefaultMinWindow is monitor.min_window when the window holds at least
	// as many samples; a smaller window is its own default min_window.
	DefaultMinWindow   = 100
	DefaultBins        = 10
	DefaultConsecutive = 2
	// DefaultDetector is monitor.detector; DefaultFalseAlarmRate its
	// target of false alerts per window per version.
	DefaultDetector       = DetectorCUSUM
	DefaultFalseAlarmRate = 0.001
	DefaultCorrection     = CorrectionBonferroni

	// monitor.thresholds: p-value levels for ks and chi2, statistic levels
	// for psi, js and wasserstein.
	DefaultThresholdKS          = 0.01
	DefaultThresholdChi2        = 0.01
	DefaultThresholdPSI         = 0.2
	DefaultThresholdJS          = 0.1
	DefaultThresholdWasserstein = 0.1
)

// MaxBins bounds monitor.bins: more bins than this cost memory per feature
// and leave too few reference samples per bin to mean anything.
const MaxBins = 1000

// DefaultFailureStatuses is circuit_breaker.failure_statuses when absent:
// [500, 502, 503, 504]. Each call returns a new slice.
func DefaultFailureStatuses() []int { return []int{500, 502, 503, 504} }

// DefaultRetryOnStatuses is retry.on_statuses when absent: [502, 503,
// 504]. Each call returns a new slice.
func DefaultRetryOnStatuses() []int { return []int{502, 503, 504} }

// DefaultAlertOn is monitor.alert_on when absent: [ks, chi2], the tests
// with p-values, whose false-alarm rate does not depend on the window
// size. Each call returns a new slice.
func DefaultAlertOn() []string { return []string{MethodKS, MethodChi2} }

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
	setDefault(&c.Sampling.QueueSize, idx, "sampling.queue_size", DefaultQueueSize)
	setDefault(&c.Sampling.Workers, idx, "sampling.workers", DefaultSamplingWorkers)
	accessLogDefaults(c, idx)
	for i := range c.Models {
		modelDefaults(&c.Models[i], idx, item("models", i))
	}
	shadowDefaults(c, idx)
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
	setDefault(&b.FailureStatuses, idx, at("circuit_breaker.failure_statuses"), DefaultFailureStatuses())

	r := &m.Retry
	setDefault(&r.Attempts, idx, at("retry.attempts"), DefaultAttempts)
	setDefault(&r.BudgetRatio, idx, at("retry.budget_ratio"), DefaultBudgetRatio)
	setDefault(&r.MinConcurrent, idx, at("retry.min_concurrent"), DefaultMinConcurrent)
	setDefault(&r.OnStatuses, idx, at("retry.on_statuses"), DefaultRetryOnStatuses())

	setDefault(&m.Limits.EndpointConcurrency, idx, at("limits.endpoint_concurrency"), DefaultEndpointConcurrency)
	setDefault(&m.Limits.MaxResponseBytes, idx, at("limits.max_response_bytes"), DefaultMaxResponseBytes)

	monitorDefaults(&m.Monitor, idx, at("monitor"))
	rolloutDefaults(m, idx, at("rollout"))
	modelShadowDefaults(m, idx, path)
}

func monitorDefaults(mon *Monitor, idx nodeIndex, path string) {
	at := func(key string) string { return path + "." + key }
	setDefault(&mon.SampleRate, idx, at("sample_rate"), DefaultSampleRate)
	setDefault(&mon.MaxBodyBytes, idx, at("max_body_bytes"), DefaultMaxBodyBytes)
	setDefault(&mon.Window, idx, at("window"), DefaultWindow)
	if !idx.has(at("reference.warmup")) && mon.Reference.File == "" && mon.Reference.Version == "" {
		mon.Reference.Warmup = DefaultWarmup
	}
	setDefault(&mon.MaxAge, idx, at("max_age"), DefaultMaxAge)
	// After window, which bounds it.
	setDefault(&mon.MinWindow, idx, at("min_window"), min(DefaultMinWindow, mon.Window))
	setDefault(&mon.Bins, idx, at("bins"), DefaultBins)
	setDefault(&mon.Consecutive, idx, at("consecutive"), DefaultConsecutive)
	setDefault(&mon.Correction, idx, at("correction"), DefaultCorrection)
	setDefault(&mon.AlertOn, idx, at("alert_on"), DefaultAlertOn())
	setDefault(&mon.AlertSeverity, idx, at("alert_severity"), DefaultAlertSeverity)
	setDefault(&mon.Detector, idx, at("detector"), DefaultDetector)
	setDefault(&mon.FalseAlarmRate, idx, at("false_alarm_rate"), DefaultFalseAlarmRate)

	th := &mon.Thresholds
	setDefault(&th.KS, idx, at("thresholds.ks"), DefaultThresholdKS)
	setDefault(&th.Chi2, idx, at("thresholds.chi2"), DefaultThresholdChi2)
	setDefault(&th.PSI, idx, at("thresholds.psi"), DefaultThresholdPSI)
	setDefault(&th.JS, idx, at("thresholds.js"), DefaultThresholdJS)
	setDefault(&th.Wasserstein, idx, at("thresholds.wasserstein"), DefaultThresholdWasserstein)
}

// setDefault stores def in *dst unless the file set path.
func setDefault[T any](dst *T, idx nodeIndex, path string, def T) {
	if !idx.has(path) {
		*dst = def
	}
}
