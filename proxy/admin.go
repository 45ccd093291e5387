package proxy

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/rollout"
)

// AdminHandler serves the admin endpoints: /metrics, /healthz, /readyz,
// /status and POST /reload. When admin.token_file is set, mutating
// endpoints need "Authorization: Bearer <token>".
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.guardRead(promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorLog:          slogPrinter{s},
	}).ServeHTTP))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	mux.HandleFunc("GET /{$}", s.serveStatusPage)
	mux.HandleFunc("GET /status", s.guardRead(s.serveStatus))
	mux.HandleFunc("GET /drift", s.guardRead(s.monitor.Handler().ServeHTTP))
	mux.HandleFunc("GET /debug/pprof/{name}", s.guardRead(s.servePprof))
	mux.HandleFunc("POST /reload", s.guard(s.serveReload))
	mux.HandleFunc("POST /breakers/reset", s.guard(s.serveBreakerReset))
	mux.HandleFunc("GET /models/{name}/weights", s.guardRead(s.serveGetWeights))
	mux.HandleFunc("PUT /models/{name}/weights", s.guard(s.servePutWeights))
	mux.HandleFunc("POST /models/{name}/promote", s.guard(s.servePromote))
	mux.HandleFunc("POST /models/{name}/rollback", s.guard(s.serveRollback))
	mux.HandleFunc("POST /feedback", s.guard(s.serveFeedback))
	mux.HandleFunc("GET /compare", s.guardRead(s.serveCompare))
	return mux
}

type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Error(fmt.Sprint(v...), "component", "metrics") }

// guardRead guards a reading endpoint when admin.guard_reads is set.
func (s *Server) guardRead(h http.HandlerFunc) http.HandlerFunc {
	guarded := s.guard(h)
	return func(w http.ResponseWriter, r *http.Request) {
		if s.snap.Load().cfg.Admin.GuardReads {
			guarded(w, r)
			return
		}
		h(w, r)
	}
}

// guard requires the admin bearer token when one is configured. The token
// file is read on every call so a rotated secret takes effect at once.
func (s *Server) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		file := s.snap.Load().cfg.Admin.TokenFile
		if file == "" {
			h(w, r)
			return
		}
		want, err := os.ReadFile(file)
		if err != nil || len(strings.TrimSpace(string(want))) == 0 {
			s.log.Error("admin token unreadable; refusing mutating request", "file", file, "error", err)
			writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "admin token unavailable"})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(strings.TrimSpace(string(want)))) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vane"`)
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "missing or wrong bearer token"})
			return
		}
		h(w, r)
	}
}

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	snap := s.snap.Load()
	var down []string
	for _, m := range snap.table.Models() {
		routable := false
		for _, v := range m.Versions {
			if v.Weight > 0 && v.Routable() {
				routable = true
				break
			}
		}
		if !routable {
			down = append(down, m.Name)
		}
	}
	if len(down) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "models_without_routable_version": down})
		return
	}
	if len(snap.cfg.Models) == 0 { // xds: no model received yet
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "models": 0})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true})
}

// Status is the body of GET /status.
type Status struct {
	ConfigHash string        `json:"config_hash"`
	LoadedAt   time.Time     `json:"loaded_at"`
	Models     []ModelStatus `json:"models"`
	// Rollouts are the models' rollouts: state, step and the gate values
	// that decided it; absent when no model has one.
	Rollouts []rollout.Status `json:"rollouts,omitempty"`
	Source   any              `json:"source"` // file or xds; see SetSource
}

// ModelStatus is one model in Status.
type ModelStatus struct {
	Model    string          `json:"model"`
	Protocol string          `json:"protocol"`
	Versions []VersionStatus `json:"versions"`
}

// VersionStatus is one version in Status. Share is the fraction 0..1 of the
// model's weighted traffic the version gets after health.
type VersionStatus struct {
	Version   string           `json:"version"`
	Weight    float64          `json:"weight"`
	Share     float64          `json:"share"`
	Healthy   bool             `json:"healthy"`
	Endpoints []EndpointStatus `json:"endpoints"`
	// Shadow marks a shadow version: weight and share 0, copies only.
	Shadow bool `json:"shadow,omitempty"`
}

// EndpointStatus is one endpoint in Status.
// Healthy is the active probes' verdict; Routable is what routing uses
// (healthy and breaker not open).
type EndpointStatus struct {
	URL      string `json:"url"`
	Healthy  bool   `json:"healthy"`
	Breaker  string `json:"breaker"`
	Routable bool   `json:"routable"`
	InFlight int64  `json:"in_flight"`
}

// Status reports the current snapshot.
func (s *Server) Status() Status {
	snap := s.snap.Load()
	st := Status{ConfigHash: snap.hash, LoadedAt: snap.loadedAt.UTC(), Models: []ModelStatus{}, Source: s.sourceStatus()}
	for _, m := range snap.table.Models() {
		shares := m.Shares()
		ms := ModelStatus{Model: m.Name, Protocol: string(m.Config.Protocol)}
		for i, v := range m.Versions {
			vs := VersionStatus{Version: v.Name, Weight: v.Weight, Share: shares[i], Healthy: v.Routable(),
				Shadow: m.Config.Versions[i].Shadow}
			for _, ep := range v.Endpoints {
				key := endpointKey(ep.Model, ep.Version, ep.URL)
				vs.Endpoints = append(vs.Endpoints, EndpointStatus{
					URL: ep.URL, Healthy: s.health.Healthy(key), Breaker: s.health.BreakerState(key),
					Routable: ep.Routable(), InFlight: ep.InFlight(),
				})
			}
			ms.Versions = append(ms.Versions, vs)
		}
		st.Models = append(st.Models, ms)
	}
	st.Rollouts = s.rollouts.Status()
	return st
}

func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Status())
}

func (s *Server) serveReload(w http.ResponseWriter, _ *http.Request) {
	hash, err := s.Reload()
	if err != nil {
		var problems configs.Errors
		body := map[string]any{"error": "config rejected; previous config keeps serving", "config_hash": s.snap.Load().hash}
		if errors.As(err, &problems) {
			list := make([]string, len(problems))
			for i, p := range problems {
				list[i] = p.String()
			}
			body["problems"] = list
		} else {
			body["problems"] = []string{err.Error()}
		}
		writeJSON(w, http.StatusBadRequest, body)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"config_hash": hash})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
