// Package toy is a toy model server for vane's demo and tests. It is not a
// real model: it classifies iris-like rows with a fixed decision stump and
// writes deterministic text for chat prompts, so that tests can predict its
// answers exactly and the demo can show two versions that visibly differ.
//
// One [Model] speaks every HTTP protocol vane understands on one handler:
//
//   - KServe V1 / TF Serving: GET /v1/models/{name},
//     POST /v1/models/{name}[/versions/{v}]:predict (instances or columnar inputs)
//   - KServe V2 (Open Inference Protocol): GET /v2, /v2/health/{ready,live},
//     /v2/models/{name}[/versions/{v}][/ready],
//     POST /v2/models/{name}[/versions/{v}]/infer (JSON or Triton binary inputs)
//   - MLflow: GET /ping, /health; POST /invocations (JSON or text/csv)
//   - OpenAI-compatible: GET /v1/models; POST /v1/completions,
//     /v1/chat/completions (with "stream": true answered as server-sent events)
//   - GET / describes the model (the raw protocol's default health probe)
//
// Every answer carries the header X-Model-Version. Version "v1" uses one set
// of thresholds; any other version uses shifted thresholds and also returns
// class probabilities. Errors are JSON objects {"error": "..."}.
package toy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// VersionHeader is the response header naming the version that answered.
const VersionHeader = "X-Model-Version"

// DefaultFeatures are the iris feature names used when Options.Features is
// empty.
var DefaultFeatures = []string{"sepal_length", "sepal_width", "petal_length", "petal_width"}

// DefaultStreamInterval is the pause between streamed chunks.
const DefaultStreamInterval = 5 * time.Millisecond

// maxBodyBytes bounds request bodies; larger ones get 413.
const maxBodyBytes = 8 << 20

// Options configure a Model. The zero value is a valid "iris" "v1" model.
type Options struct {
	// Name is the model name used in paths (default "iris").
	Name string
	// Version is reported in headers and bodies (default "v1"). "v1" uses
	// the v1 thresholds; any other value the shifted v2 thresholds plus
	// probabilities.
	Version string
	// Delay is extra latency added to each predict-like request.
	Delay time.Duration
	// FailRate is the fraction (0..1) of predict-like requests answered 503.
	FailRate float64
	// Seed seeds the FailRate random source (default 1), so runs repeat.
	Seed uint64
	// Features name the input columns in order (default DefaultFeatures).
	// The classifier reads "petal_length" and "petal_width" when present,
	// else the last two features. Fewer than two names means the default.
	Features []string
	// StreamInterval is the pause between streamed chunks
	// (default DefaultStreamInterval; negative means no pause).
	StreamInterval time.Duration
	// DisagreeEvery, when > 0, makes every DisagreeEvery-th row the model
	// classifies (counted from its start, over all requests) answer the
	// next class instead of the stump's: a version that disagrees with an
	// otherwise identical one on exactly 1/DisagreeEvery of the rows, for
	// shadow comparisons. Its probabilities are left as the stump's.
	DisagreeEvery int
}

// Model is a toy model server; it implements http.Handler.
type Model struct {
	opts     Options
	stump    stump
	probs    bool // answer with class probabilities (every version but v1)
	lenIdx   int  // index of petal_length in opts.Features
	widIdx   int  // index of petal_width in opts.Features
	requests atomic.Int64
	failing  atomic.Bool
	seq      atomic.Int64 // ids of OpenAI answers
	rowsSeen atomic.Int64 // rows classified, for DisagreeEvery

	rngMu sync.Mutex
	rng   *rand.Rand
}

// New returns a Model for opts, filling in defaults.
func New(opts Options) *Model {
	if opts.Name == "" {
		opts.Name = "iris"
	}
	if opts.Version == "" {
		opts.Version = "v1"
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if len(opts.Features) < 2 {
		opts.Features = DefaultFeatures
	}
	opts.Features = append([]string(nil), opts.Features...)
	opts.FailRate = min(max(opts.FailRate, 0), 1)
	if opts.StreamInterval == 0 {
		opts.StreamInterval = DefaultStreamInterval
	}
	m := &Model{
		opts:   opts,
		stump:  stumpFor(opts.Version),
		probs:  opts.Version != "v1",
		lenIdx: len(opts.Features) - 2,
		widIdx: len(opts.Features) - 1,
		rng:    rand.New(rand.NewPCG(opts.Seed, opts.Seed)),
	}
	for i, f := range opts.Features {
		switch f {
		case "petal_length":
			m.lenIdx = i
		case "petal_width":
			m.widIdx = i
		}
	}
	return m
}

// Name returns the model name served.
func (m *Model) Name() string { return m.opts.Name }

// Version returns the version served.
func (m *Model) Version() string { return m.opts.Version }

// Requests returns how many predict-like requests (predict, infer,
// invocations, completions) have reached the model, including those answered
// with an error.
func (m *Model) Requests() int64 { return m.requests.Load() }

// SetFailing makes every predict-like and readiness answer 503 while fail is
// true. Liveness (/v2/health/live) and metadata still answer 200.
func (m *Model) SetFailing(fail bool) { m.failing.Store(fail) }

// ServeHTTP routes r to the protocol handlers.
func (m *Model) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(VersionHeader, m.opts.Version)
	p := r.URL.Path
	switch {
	case p == "/":
		if m.method(w, r, http.MethodGet) && m.ready(w) {
			writeJSON(w, http.StatusOK, map[string]any{
				"name": m.opts.Name, "version": m.opts.Version, "ready": true,
				"features": m.opts.Features, "toy": true,
			})
		}
	case p == "/ping" || p == "/health":
		m.serveMLflowHealth(w, r)
	case p == "/invocations":
		m.serveInvocations(w, r)
	case p == "/v1/completions" || p == "/v1/chat/completions":
		m.serveOpenAI(w, r, p == "/v1/chat/completions")
	case p == "/v1/models":
		m.serveOpenAIModels(w, r)
	case strings.HasPrefix(p, "/v1/models/"):
		m.serveV1(w, r, strings.TrimPrefix(p, "/v1/models/"))
	case p == "/v2" || strings.HasPrefix(p, "/v2/"):
		m.serveV2(w, r, strings.TrimPrefix(p, "/v2"))
	default:
		m.notFound(w, r)
	}
}

func (m *Model) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "no route for %s %s", r.Method, r.URL.Path)
}

// method answers 405 unless r uses want; it reports whether r may proceed.
func (m *Model) method(w http.ResponseWriter, r *http.Request, want string) bool {
	if r.Method == want || (want == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", want)
	writeError(w, http.StatusMethodNotAllowed, "method %s not allowed on %s; use %s", r.Method, r.URL.Path, want)
	return false
}

// ready answers 503 while the model is failing; it reports whether the
// caller may answer.
func (m *Model) ready(w http.ResponseWriter) bool {
	if m.failing.Load() {
		writeError(w, http.StatusServiceUnavailable, "model %s %s is failing", m.opts.Name, m.opts.Version)
		return false
	}
	return true
}

// begin does the bookkeeping shared by predict-like requests: it counts the
// request, reads the body (so that a client going away cancels the request
// context), refuses it while failing, sleeps Delay and injects FailRate
// failures. It returns the body and whether the caller should answer.
func (m *Model) begin(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	m.requests.Add(1)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body larger than %d bytes", maxBodyBytes)
		} else {
			writeError(w, http.StatusBadRequest, "reading body: %v", err)
		}
		return nil, false
	}
	if !m.ready(w) {
		return nil, false
	}
	if m.opts.Delay > 0 {
		t := time.NewTimer(m.opts.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			writeError(w, http.StatusServiceUnavailable, "request canceled during delay")
			return nil, false
		}
	}
	if m.shouldFail() {
		writeError(w, http.StatusServiceUnavailable, "injected failure (fail rate %g)", m.opts.FailRate)
		return nil, false
	}
	return body, true
}

func (m *Model) shouldFail() bool {
	if m.opts.FailRate <= 0 {
		return false
	}
	m.rngMu.Lock()
	defer m.rngMu.Unlock()
	return m.rng.Float64() < m.opts.FailRate
}

// decodeJSON unmarshals body into v, answering 400 on failure.
func decodeJSON(w http.ResponseWriter, body []byte, v any) bool {
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(w, http.StatusBadRequest, "empty body; want JSON")
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON: %v", err)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}
