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
	// Shutdown configures graceful shutdown.
	Shutdown Shutdown `yaml:"shutdown"`
	// StateDir is where learned references persist across restarts. Empty
	// means nothing is persisted.
	StateDir string `yaml:"state_dir"`
	// Models are the routed models; at least one.
	Models []Model `yaml:"models"`
}

// Admin is the admin listener (/metrics, /status, /reload, ...).
type Admin struct {
	// Listen is the admin address. Default "127.0.0.1:9901". It must differ
	// from the data-plane address.
	Listen string `yaml:"listen"`
	// TokenFile, when set, names a file whose trimmed content is the bearer
	// token that mutating endpoints require.
	TokenFile string `yaml:"token_file"`
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
}

// Retry configures retries.
type Retry struct {
	// Attempts is the total number of tries including the first. Default 2.
	Attempts int `yaml:"attempts"`
	// BudgetRatio in [0,1] caps retries as a share of live requests.
	// Default 0.2 when the key is absent.
	BudgetRatio float64 `yaml:"budget_ratio"`
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
	// Features name the columns of row-shaped inputs.
	Features []string `yaml:"features"`
}

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
