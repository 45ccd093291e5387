// Package configs defines vane's configuration file: the Go types, their
// documented defaults, strict YAML decoding (unknown keys are errors),
// validation that names the field path and line of every problem, and the
// watcher that notices when the file changes. It also embeds the example
// configs that ship with vane (the one `vane demo` runs among them).
//
// A *Config returned by Load or Parse is complete: every default has been
// filled in and every field validated, so consumers never re-check it.
package configs

import "time"

// Config is the whole file. The zero value is not usable; obtain one from
// Load or Parse.
type Config struct {
	// Listen is the data-plane address (HTTP/1.1 and h2c on one port).
	// Default "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// Admin configures the admin listener.
	Admin Admin `yaml:"admin"`
	// Metrics configures the optional metrics-only listener (exposure.go).
	Metrics Metrics `yaml:"metrics"`
	// AccessLog configures the optional access log (accesslog.go).
	AccessLog AccessLog `yaml:"access_log"`
	// Shutdown configures graceful shutdown.
	Shutdown Shutdown `yaml:"shutdown"`
	// StateDir is where learned references persist across restarts. Empty
	// means nothing is persisted.
	StateDir string `yaml:"state_dir"`
	// Sampling configures the queue between the data plane and the drift
	// monitor, shared by all models.
	Sampling Sampling `yaml:"sampling"`
	// Models are the routed models; at least one, unless xds is set.
	Models []Model `yaml:"models"`
	// Shadowing tunes the queue of copies to shadow versions.
	Shadowing Shadowing `yaml:"shadowing"`
	// Feedback configures the ground-truth join (POST /feedback).
	Feedback Feedback `yaml:"feedback"`
	// TrustedProxies are the peers (CIDRs or addresses) whose
	// X-Forwarded-For, -Proto and -Host vane keeps; from any other peer vane
	// sets them itself. Default none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// XDS, when its server is set, takes the models from a control plane.
	XDS XDS `yaml:"xds"`
}

// Sampling configures the bounded queue that carries request/response
// samples to the drift monitor. A full queue drops samples and counts them;
// it never slows a request.
type Sampling struct {
	// QueueSize is the queue's capacity in samples, >= 1. Default 4096.
	QueueSize int `yaml:"queue_size"`
	// Workers decode and score samples, >= 1. Default 1.
	Workers int `yaml:"workers"`
}

// Admin is the admin listener (/metrics, /status, /reload, ...).
type Admin struct {
	// Listen is the admin address. Default "127.0.0.1:9901". It must differ
	// from the data-plane address.
	Listen string `yaml:"listen"`
	// TokenFile, when set, names a file whose trimmed content is the bearer
	// token that mutating endpoints require.
	TokenFile string `yaml:"token_file"`
	// GuardReads, when true, makes /metrics, /status and /drift need the
	// token too (/healthz and /readyz stay open for kubelet probes).
	// Requires token_file. Default false.
	GuardReads bool `yaml:"guard_reads"`
	// Insecure, when true, allows a listen address beyond loopback without
	// token_file: whoever reaches the port can reload and read pprof.
	// Default false (such a config is rejected).
	Insecure bool `yaml:"insecure"`
}

// Shutdown configures what SIGTERM does.
type Shutdown struct {
	// DrainTimeout bounds how long in-flight requests may take to finish
	// after the listener closes. Default 30s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// Protocol names the inference protocol a model speaks.
type Protocol string

// The protocols vane understands.
const (
	ProtocolKServeV1  Protocol = "kserve-v1"
	ProtocolKServeV2  Protocol = "kserve-v2"
	ProtocolTFServing Protocol = "tfserving"
	ProtocolMLflow    Protocol = "mlflow"
	ProtocolOpenAI    Protocol = "openai"
	ProtocolGRPC      Protocol = "grpc"
	ProtocolRaw       Protocol = "raw"
)

// Protocols lists the protocols vane understands, in documentation order.
func Protocols() []Protocol {
	return []Protocol{ProtocolKServeV1, ProtocolKServeV2, ProtocolTFServing,
		ProtocolMLflow, ProtocolOpenAI, ProtocolGRPC, ProtocolRaw}
}

// Known reports whether p is one of Protocols.
func (p Protocol) Known() bool {
	for _, q := range Protocols() {
		if p == q {
			return true
		}
	}
	return false
}

// Model is one routed model and its versions.
type Model struct {
	// Name matches [a-z0-9][a-z0-9._-]* and is unique.
	Name string `yaml:"name"`
	// Match selects the requests of this model; at least one matcher.
	Match Match `yaml:"match"`
	// Protocol is the inference protocol. Default "raw".
	Protocol Protocol `yaml:"protocol"`
	// Timeout bounds the whole request, client to last byte. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// Routing tunes version choice.
	Routing Routing `yaml:"routing"`
	// Versions are the model's versions; at least one, names unique.
	Versions []Version `yaml:"versions"`
	// Health configures active probes.
	Health Health `yaml:"health"`
	// CircuitBreaker configures the per-endpoint breaker.
	CircuitBreaker CircuitBreaker `yaml:"circuit_breaker"`
	// Retry configures retries.
	Retry Retry `yaml:"retry"`
	// Monitor configures drift sampling.
	Monitor Monitor `yaml:"monitor"`
	// Limits bound the load on each endpoint.
	Limits Limits `yaml:"limits"`
	// Rollout, when its candidate is set, moves traffic to the candidate
	// step by step behind gates; see Rollout.
	Rollout Rollout `yaml:"rollout"`
}

// Limits bound the load vane sends to each endpoint.
type Limits struct {
	// EndpointConcurrency caps in-flight requests per endpoint; a request
	// that finds every endpoint of its version full gets 503 with
	// Retry-After. 0 (the default) means no limit; negative is invalid.
	EndpointConcurrency int `yaml:"endpoint_concurrency"`
	// MaxResponseBytes caps an answer vane reads whole before sending it
	// (sized HTTP/1.1 answers); beyond it the client gets 502. Streamed
	// answers are not capped. Default 64 MiB (DefaultMaxResponseBytes).
	MaxResponseBytes int `yaml:"max_response_bytes"`
}

// Match selects requests. Every set matcher must hold; among models whose
// matchers hold, the longest PathPrefix wins, then a set Host, then the most
// Headers.
type Match struct {
	// PathPrefix matches the request path by prefix. Empty matches any path.
	PathPrefix string `yaml:"path_prefix"`
	// Host matches the Host header exactly (port ignored), case-insensitive.
	Host string `yaml:"host"`
	// Headers must all be present with exactly these values.
	Headers map[string]string `yaml:"headers"`
}

// The on_unhealthy policies.
const (
	OnUnhealthyRedistribute = "redistribute"
	OnUnhealthyFallback     = "fallback"
	OnUnhealthyFail         = "fail"
)

// Routing tunes how a request picks a version.
type Routing struct {
	// StickyHeader, when set, names a request header whose value keeps a
	// user on one version while weights hold.
	StickyHeader string `yaml:"sticky_header"`
	// OnUnhealthy is what happens to a down version's share:
	// redistribute (default), fallback or fail.
	OnUnhealthy string `yaml:"on_unhealthy"`
	// Fallback is the version used by on_unhealthy: fallback.
	Fallback string `yaml:"fallback"`
	// ShadowRate in [0,1] is the share of requests copied to the shadow
	// versions, decided per request id. Default 1.0.
	ShadowRate float64 `yaml:"shadow_rate"`
	// ShadowTimeout bounds one copy to a shadow version, > 0. Default the
	// model's timeout.
	ShadowTimeout time.Duration `yaml:"shadow_timeout"`
}

// Version is one version of a model.
type Version struct {
	// Name is unique within the model.
	Name string `yaml:"name"`
	// Weight is relative, >= 0; at least one version has weight > 0.
	// Default 1 when the key is absent.
	Weight float64 `yaml:"weight"`
	// Endpoints are http://host:port (HTTP/1.1) or h2c://host:port URLs;
	// at least one.
	Endpoints []string `yaml:"endpoints"`
	// Shadow, when true, makes this a shadow version: it gets copies of
	// the model's requests (routing.shadow_rate of them) and never answers
	// a client; its weight is ignored. Default false.
	Shadow bool `yaml:"shadow"`
}

// Health configures active health checks.
type Health struct {
	// Path is probed with GET; default derived from the protocol (see
	// DefaultHealthPath). Empty only for grpc, which is probed with the
	// gRPC health service instead.
	Path string `yaml:"path"`
	// Interval between probes. Default 5s.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one probe. Default 1s.
	Timeout time.Duration `yaml:"timeout"`
	// HealthyThreshold passes in a row make an endpoint healthy. Default 2.
	HealthyThreshold int `yaml:"healthy_threshold"`
	// UnhealthyThreshold failures in a row make it unhealthy. Default 3.
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
}

// CircuitBreaker configures one breaker per endpoint.
type CircuitBreaker struct {
	// FailureRatio in (0,1] opens the breaker. Default 0.5.
	FailureRatio float64 `yaml:"failure_ratio"`
	// MinRequests in the window before the ratio counts. Default 20.
	MinRequests int `yaml:"min_requests"`
	// Window is the rolling window. Default 30s.
	Window time.Duration `yaml:"window"`
	// OpenFor is how long the breaker stays open. Default 10s.
	OpenFor time.Duration `yaml:"open_for"`
	// HalfOpenRequests trial calls decide whether to close. Default 5.
	HalfOpenRequests int `yaml:"half_open_requests"`
	// FailureStatuses are the upstream HTTP statuses that count as
	// failures, besides transport errors and timeouts. Each in 100..599.
	// Default [500, 502, 503, 504].
	FailureStatuses []int `yaml:"failure_statuses"`
}

// Retry configures retries.
type Retry struct {
	// Attempts is the total number of tries including the first. Default 2.
	Attempts int `yaml:"attempts"`
	// BudgetRatio in [0,1] caps retries as a share of live requests.
	// Default 0.2 when the key is absent.
	BudgetRatio float64 `yaml:"budget_ratio"`
	// MinConcurrent retries are always allowed in flight, whatever the
	// ratio (as Envoy's retry budget), >= 0. Default 3.
	MinConcurrent int `yaml:"min_concurrent"`
	// OnStatuses are the upstream statuses that are retried (when no byte
	// has reached the client), besides connect errors and resets before
	// the response. Each in 100..599. Default [502, 503, 504].
	OnStatuses []int `yaml:"on_statuses"`
}

// Monitor configures drift sampling for one model.
type Monitor struct {
	// SampleRate in [0,1] is the share of requests sampled. Default 1.0
	// when the key is absent.
	SampleRate float64 `yaml:"sample_rate"`
	// MaxBodyBytes: larger bodies are proxied but not sampled. Default 1 MiB
	// (1048576); 0 samples only empty bodies.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// Window is the number of samples per live window. Default 1000.
	Window int `yaml:"window"`
	// Reference selects the reference distribution.
	Reference Reference `yaml:"reference"`
	// Features name the columns of row-shaped inputs. Not for protocol
	// raw, which names its features with Paths.
	Features []string `yaml:"features"`
	// MaxAge closes a live window that is not full after this long, if it
	// holds at least MinWindow samples. Default 5m; 0 means windows close
	// only when full.
	MaxAge time.Duration `yaml:"max_age"`
	// MinWindow is the fewest samples a window closed by MaxAge may hold,
	// 2..window. Default 100, or window when window is smaller.
	MinWindow int `yaml:"min_window"`
	// Bins is the number of quantile bins frozen from a numeric reference
	// for psi and js, >= 2. Default 10.
	Bins int `yaml:"bins"`
	// Consecutive drifted windows raise a feature's alert, and as many clean
	// ones clear it, >= 1. Default 2.
	Consecutive int `yaml:"consecutive"`
	// Correction of p-values across one version's features: bonferroni
	// (default), fdr (Benjamini-Hochberg) or none.
	Correction string `yaml:"correction"`
	// Thresholds per method; see Thresholds.
	Thresholds Thresholds `yaml:"thresholds"`
	// AlertOn lists the methods whose verdicts raise a feature's alert: a
	// window is drifted for a feature when any listed method that applies
	// to its kind says so. Methods: ks, psi, js, wasserstein, chi2.
	// Default [ks, chi2].
	AlertOn []string `yaml:"alert_on"`
	// Paths, for protocol raw, name features by a dot path into the
	// request JSON ("inputs.0.x"; numbers index arrays). Only protocol raw
	// takes it (the others decode features themselves); with raw it
	// replaces Features, which must then be empty.
	Paths map[string]string `yaml:"paths"`
	// PredictionPath, for protocol raw, is the dot path of the prediction
	// in the response JSON. Empty means no prediction. Only protocol raw
	// takes it.
	PredictionPath string `yaml:"prediction_path"`
	// WebhookURL, when set, receives alerts as JSON in Alertmanager's
	// POST /api/v2/alerts shape; an absolute http(s) URL.
	WebhookURL string `yaml:"webhook_url"`
	// AlertLabels are added to the labels of every webhook alert; values
	// expand ${ENV} (pod, namespace). Default none. See alertlabels.go.
	AlertLabels map[string]string `yaml:"alert_labels"`
	// AlertSeverity is the webhook alerts' severity label. Default warning.
	AlertSeverity string `yaml:"alert_severity"`
	// GeneratorURL is the webhook alerts' generatorURL (a link back, such
	// as the status page); values expand ${ENV}. Default none.
	GeneratorURL string `yaml:"generator_url"`
	// Detector decides alerts: cusum (default) accumulates evidence
	// across windows in CUSUMs on standardized statistics, calibrated to
	// FalseAlarmRate; window judges each window alone (alert_on,
	// thresholds, correction) with Consecutive windows of hysteresis.
	Detector string `yaml:"detector"`
	// FalseAlarmRate is the cusum detector's target of false alerts per
	// window per version, in (0, 0.1]. Default 0.001 (one per 1000
	// windows).
	FalseAlarmRate float64 `yaml:"false_alarm_rate"`
}

// The alert detectors of monitor.detector.
const (
	DetectorCUSUM  = "cusum"
	DetectorWindow = "window"
)

// MaxMonitorFeatures is the most features monitored per version; a
// config naming more is rejected.
const MaxMonitorFeatures = 64

// Thresholds are the per-method alert thresholds. ks and chi2 are p-value
// levels in (0,1) (drifted when the corrected p-value is below); psi, js
// and wasserstein are statistic levels > 0 (drifted when at or above).
type Thresholds struct {
	KS          float64 `yaml:"ks"`          // default 0.01
	Chi2        float64 `yaml:"chi2"`        // default 0.01
	PSI         float64 `yaml:"psi"`         // default 0.2
	JS          float64 `yaml:"js"`          // default 0.1
	Wasserstein float64 `yaml:"wasserstein"` // default 0.1
}

// The drift methods, as named by monitor.alert_on.
const (
	MethodKS          = "ks"
	MethodPSI         = "psi"
	MethodJS          = "js"
	MethodWasserstein = "wasserstein"
	MethodChi2        = "chi2"
)

// Methods lists the drift methods, in documentation order.
func Methods() []string {
	return []string{MethodKS, MethodPSI, MethodJS, MethodWasserstein, MethodChi2}
}

// The p-value corrections of monitor.correction.
const (
	CorrectionBonferroni = "bonferroni"
	CorrectionFDR        = "fdr" // Benjamini-Hochberg
	CorrectionNone       = "none"
)

// Reference selects exactly one source. When the file sets none of the
// three, Warmup is 1000.
type Reference struct {
	// Warmup: the first N samples become the reference.
	Warmup int `yaml:"warmup"`
	// File is a saved profile.
	File string `yaml:"file"`
	// Version uses another version's live window.
	Version string `yaml:"version"`
}
