package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/rollout"
)

// The weights endpoints change a model's weights in the config file with
// the same code as `vane weights` (configs.WeightEditor: in place, validated,
// atomic, journaled), then reload at once rather than waiting for the file
// watch; the watch's later event finds the same bytes and does nothing.
//
//	GET  /models/{name}/weights     {"model": "iris", "versions": [{"version": "v1", "weight": 90}, ...]}
//	PUT  /models/{name}/weights     body {"v1": 90, "v2": 10}; versions not named keep theirs
//	POST /models/{name}/promote     body {"version": "v2"} or ?version=v2
//	POST /models/{name}/rollback    the weights before the model's last recorded change
//
// When vane does not serve from a file (Options.ControlPlane is set, or the
// config was given as bytes) the changing ones answer 409 and say where
// weights are changed instead.

// errNotFile is why a weight change cannot be written here.
type errNotFile struct{ where string }

func (e errNotFile) Error() string { return e.where }

// weightEditor returns the editor of the served file.
func (s *Server) weightEditor() (*configs.WeightEditor, error) {
	switch {
	case s.opts.ControlPlane != "":
		return nil, errNotFile{fmt.Sprintf("models come from the control plane %s: change the weights in its config file (groups[].models)", s.opts.ControlPlane)}
	case s.opts.ConfigPath == "":
		return nil, errNotFile{"this vane was given its config directly, not from a file: there is no file to write"}
	}
	return &configs.WeightEditor{Path: s.opts.ConfigPath, Now: s.now, Apply: s.applyEdit}, nil
}

// applyEdit applies an edited config as the editor writes it: prepare
// (which can fail, and then neither the file nor the served config
// changes), write the file, commit. A weight change is thus served exactly
// when it is in the file.
func (s *Server) applyEdit(cfg *configs.Config, raw []byte, write func() error) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	prev := s.snap.Load()
	plan, err := s.prepare(cfg, raw, prev)
	if err != nil {
		err = fmt.Errorf("the running vane cannot apply the new weights; the file is unchanged: %w", err)
		s.rejected(err)
		return err
	}
	if err := write(); err != nil {
		return err
	}
	s.warnFixedAtStart(prev.cfg, cfg)
	s.commit(plan)
	s.log.Info("config loaded", "hash", plan.snap.hash, "models", len(cfg.Models), "by", "weights")
	return nil
}

// applyFile makes sure the file just edited is served. The editor applied
// it as it wrote it (applyEdit); what is left is a file that changed
// under the editor's feet in between, which a reload then takes.
func (s *Server) applyFile(ch configs.Change) error {
	if !ch.Changed || s.snap.Load().hash == ch.Hash {
		return nil
	}
	if _, err := s.Reload(); err != nil {
		return fmt.Errorf("the weights were written to the file but the running vane did not apply them: %w", err)
	}
	return nil
}

// weightsWriter is the rollout controller's Writer: the served weights,
// changed through the file.
type weightsWriter struct{ s *Server }

var _ rollout.Writer = weightsWriter{}

func (w weightsWriter) Weights(model string) ([]configs.VersionWeight, error) {
	for _, m := range configs.WeightsOf(w.s.Config()) {
		if m.Model == model {
			return m.Versions, nil
		}
	}
	return nil, fmt.Errorf("no model %q", model)
}

func (w weightsWriter) SetWeights(model string, weights map[string]float64, note string) error {
	ed, err := w.s.weightEditor()
	if err != nil {
		return err
	}
	ch, err := ed.Set(model, weights, rollout.Who, note)
	if err != nil {
		return err
	}
	return w.s.applyFile(ch)
}

func (w weightsWriter) Note(model, note string) error {
	ed, err := w.s.weightEditor()
	if err != nil {
		return err
	}
	return ed.Note(model, rollout.Who, note)
}

func (w weightsWriter) LastEntry(model string) (configs.Entry, bool, error) {
	ed, err := w.s.weightEditor()
	if err != nil {
		return configs.Entry{}, false, nil // no file, no journal: nothing recorded
	}
	return ed.LastEntry(model)
}

// weightsAnswer is the body of the weights endpoints.
type weightsAnswer struct {
	Model    string                  `json:"model"`
	Versions []configs.VersionWeight `json:"versions"`
	Before   []configs.VersionWeight `json:"before,omitempty"`
	Changed  *bool                   `json:"changed,omitempty"`
	Hash     string                  `json:"config_hash"`
}

func (s *Server) serveGetWeights(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	snap := s.snap.Load()
	for _, m := range configs.WeightsOf(snap.cfg) {
		if m.Model == name {
			writeJSON(w, http.StatusOK, weightsAnswer{Model: name, Versions: m.Versions, Hash: snap.hash})
			return
		}
	}
	writeJSON(w, http.StatusNotFound, apiError{Error: "no such model", Model: name})
}

func (s *Server) servePutWeights(w http.ResponseWriter, r *http.Request) {
	var body map[string]float64
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil || len(body) == 0 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: `body must be a JSON object of version weights, such as {"v1": 90, "v2": 10}`, Model: r.PathValue("name")})
		return
	}
	s.changeWeights(w, r, func(ed *configs.WeightEditor, model, who string) (configs.Change, error) {
		return ed.Set(model, body, who, "")
	})
}

func (s *Server) servePromote(w http.ResponseWriter, r *http.Request) {
	version := r.URL.Query().Get("version")
	if version == "" {
		var body struct {
			Version string `json:"version"`
		}
		_ = json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body)
		version = body.Version
	}
	if version == "" {
		writeJSON(w, http.StatusBadRequest, apiError{Error: `name the version: body {"version": "v2"} or ?version=v2`, Model: r.PathValue("name")})
		return
	}
	s.changeWeights(w, r, func(ed *configs.WeightEditor, model, who string) (configs.Change, error) {
		return ed.Promote(model, version, who)
	})
}

func (s *Server) serveRollback(w http.ResponseWriter, r *http.Request) {
	s.changeWeights(w, r, func(ed *configs.WeightEditor, model, who string) (configs.Change, error) {
		return ed.Rollback(model, who)
	})
}

// changeWeights runs one edit for an endpoint and answers with its
// outcome.
func (s *Server) changeWeights(w http.ResponseWriter, r *http.Request, edit func(*configs.WeightEditor, string, string) (configs.Change, error)) {
	model := r.PathValue("name")
	ed, err := s.weightEditor()
	if err != nil {
		writeJSON(w, http.StatusConflict, apiError{Error: err.Error(), Model: model})
		return
	}
	if !slices.ContainsFunc(s.Config().Models, func(m configs.Model) bool { return m.Name == model }) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such model", Model: model})
		return
	}
	who := r.Method + " " + r.URL.Path
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		who += " from " + host
	}
	ch, err := edit(ed, model, who)
	if err == nil {
		err = s.applyFile(ch)
	}
	if err != nil {
		var problems configs.Errors
		code := http.StatusInternalServerError
		body := map[string]any{"error": err.Error(), "model": model}
		switch {
		case errors.As(err, &problems):
			code = http.StatusBadRequest
			list := make([]string, len(problems))
			for i, p := range problems {
				list[i] = p.String()
			}
			body["error"], body["problems"] = "weights refused; the file is unchanged", list
		case errors.Is(err, configs.ErrNoHistory), errors.Is(err, configs.ErrReadOnlyConfig):
			code = http.StatusConflict
		case configs.Refused(err):
			code = http.StatusBadRequest
		}
		writeJSON(w, code, body)
		return
	}
	changed := ch.Changed
	writeJSON(w, http.StatusOK, weightsAnswer{Model: model, Versions: ch.After, Before: ch.Before, Changed: &changed, Hash: ch.Hash})
}
