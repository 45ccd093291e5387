package configs

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Weight edits change the versions' weights in a config file in place.
// Only the bytes of the weight values change: the new values are spliced
// into the original text at the positions the YAML parser reports, so
// comments, key order, quoting and layout stay exactly as written (a
// re-encoded node tree would reflow long lines, re-indent lists and move
// comments). Every edit is validated as a whole config before it is
// written, written atomically (a temporary file in the same directory,
// fsync, rename), serialized with other edits by a lock file, and
// recorded in the weights journal (see journal.go).

// ErrReadOnlyConfig is returned when the config file's directory cannot be
// written: a Kubernetes ConfigMap volume is mounted read-only, and so its
// files can never be edited in place. Change the weights in the ConfigMap
// itself instead (kubectl edit / apply / patch); the kubelet then swaps
// the mounted file and vane's file watch reloads it.
var ErrReadOnlyConfig = errors.New("the config file is on a read-only file system (a mounted ConfigMap is): edit the ConfigMap instead (kubectl edit or apply), and vane reloads the mounted file when the kubelet updates it")

// ErrNoHistory is returned by Rollback when the journal holds no change of
// the model left to undo.
var ErrNoHistory = errors.New("no recorded weight change to roll back")

// Refused reports whether err is an edit refused for its input (an unknown
// model or version, a bad weight, weights the validator rejects, a rollback
// with nothing to undo or after a hand edit), as opposed to a failure to
// read or write; the file is unchanged either way.
func Refused(err error) bool {
	var r refusal
	return errors.As(err, &r)
}

// refusal wraps an error that is the input's fault.
type refusal struct{ error }

func (r refusal) Unwrap() error { return r.error }

// VersionWeight is one version's weight, in config order.
type VersionWeight struct {
	Version string  `json:"version"`
	Weight  float64 `json:"weight"`
}

// ModelWeights are one model's version weights, in config order.
type ModelWeights struct {
	Model    string          `json:"model"`
	Versions []VersionWeight `json:"versions"`
}

// Map returns the weights by version name.
func (m ModelWeights) Map() map[string]float64 {
	out := make(map[string]float64, len(m.Versions))
	for _, v := range m.Versions {
		out[v.Version] = v.Weight
	}
	return out
}

// WeightsOf lists the weights of every model of c, in config order.
func WeightsOf(c *Config) []ModelWeights {
	out := make([]ModelWeights, 0, len(c.Models))
	for _, m := range c.Models {
		mw := ModelWeights{Model: m.Name}
		for _, v := range m.Versions {
			mw.Versions = append(mw.Versions, VersionWeight{Version: v.Name, Weight: v.Weight})
		}
		out = append(out, mw)
	}
	return out
}

// FormatWeights renders weights as "v1=90 v2=10", in config order.
func FormatWeights(vs []VersionWeight) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Version + "=" + fmtFloat(v.Weight)
	}
	return strings.Join(parts, " ")
}

// WeightEditor edits the weights of the config file at Path. Its methods
// are safe for concurrent use, also by several processes on one file: each
// edit holds an exclusive lock (flock) on a lock file beside the config.
type WeightEditor struct {
	// Path is the config file. When it is a symlink the edit is written to
	// the file it resolves to, so the link stays a link.
	Path string
	// Now stamps journal entries; nil is time.Now.
	Now func() time.Time
	// Apply, when set, applies the edited config as the file is written,
	// for a running vane that serves the file: it gets the new config and
	// bytes and the write of the file, prepares everything that can fail,
	// then calls write, and commits only when write succeeded. When Apply
	// fails, the file is unchanged unless write succeeded (which Apply
	// then says in its error). nil writes the file alone.
	Apply func(cfg *Config, raw []byte, write func() error) error
}

// Change is the outcome of an edit: the model's weights before and after,
// and the journal entry that records it.
type Change struct {
	Model  string          `json:"model"`
	Before []VersionWeight `json:"before"`
	After  []VersionWeight `json:"after"`
	// Hash is the config file's new content hash.
	Hash string `json:"config_hash"`
	// Changed is false when the weights already were as asked, in which
	// case the file was not rewritten.
	Changed bool `json:"changed"`
}

// Set gives the named versions of model the given weights; versions not
// named keep theirs. who names the command or endpoint for the journal
// and note, which may be empty, says why.
func (e *WeightEditor) Set(model string, weights map[string]float64, who, note string) (Change, error) {
	return e.edit(model, who, note, func(cur []VersionWeight, _ []Entry) (plan, error) {
		for name := range weights {
			if !slices.ContainsFunc(cur, func(v VersionWeight) bool { return v.Version == name }) {
				return plan{}, fmt.Errorf("model %q has no version %q (it has %s)", model, name, versionNames(cur))
			}
		}
		return plan{weights: weights}, nil
	})
}

// Promote gives version all of model's traffic: weight 100, every other
// version 0.
func (e *WeightEditor) Promote(model, version, who string) (Change, error) {
	return e.edit(model, who, "promote "+version, func(cur []VersionWeight, _ []Entry) (plan, error) {
		if !slices.ContainsFunc(cur, func(v VersionWeight) bool { return v.Version == version }) {
			return plan{}, fmt.Errorf("model %q has no version %q (it has %s)", model, version, versionNames(cur))
		}
		w := map[string]float64{}
		for _, v := range cur {
			w[v.Version] = 0
		}
		w[version] = 100
		return plan{weights: w}, nil
	})
}

// Rollback restores model's weights to what they were before its last
// recorded change; repeated, it walks further back (a rollback is itself
// recorded, and undoing it is not what a second rollback does). It refuses
// when the file's weights are not those the last change left (edited by
// hand since), since the change before would then be lost.
func (e *WeightEditor) Rollback(model, who string) (Change, error) {
	return e.edit(model, who, "rollback", func(cur []VersionWeight, hist []Entry) (plan, error) {
		target, ok := undoTarget(hist)
		if !ok {
			return plan{}, fmt.Errorf("model %q: %w", model, ErrNoHistory)
		}
		if !sameWeights(cur, target.After) {
			return plan{}, fmt.Errorf("model %q: the file's weights (%s) are not those its last recorded change left (%s, %s by %s); it was edited since, so set the weights instead",
				model, FormatWeights(cur), FormatWeights(target.After), target.When.Format(time.RFC3339), target.Who)
		}
		w := map[string]float64{}
		for _, v := range target.Before {
			w[v.Version] = v.Weight
		}
		for _, v := range cur {
			if _, ok := w[v.Version]; !ok {
				return plan{}, fmt.Errorf("model %q: version %q was added after the change being rolled back; set the weights instead", model, v.Version)
			}
		}
		return plan{weights: w, undoes: target.Seq, force: true}, nil
	})
}

// Note records a journal entry for model without changing its weights
// (a rollout that pauses says so this way).
func (e *WeightEditor) Note(model, who, note string) error {
	_, err := e.edit(model, who, note, func([]VersionWeight, []Entry) (plan, error) { return plan{force: true}, nil })
	return err
}

// History returns model's journal entries, oldest first.
func (e *WeightEditor) History(model string) ([]Entry, error) {
	cfg, _, err := Load(e.Path)
	if err != nil {
		return nil, err
	}
	j := e.journal(cfg)
	all, err := j.read()
	if err != nil {
		return nil, err
	}
	return forModel(all, model), nil
}

// JournalPath is where the journal of the config file at Path lives:
// state_dir/weights.jsonl (a relative state_dir from the config file's
// directory), or beside the config file as .NAME.weights.jsonl when
// state_dir is empty.
func (e *WeightEditor) JournalPath() (string, error) {
	cfg, _, err := Load(e.Path)
	if err != nil {
		return "", err
	}
	return e.journal(cfg).path, nil
}

func (e *WeightEditor) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// plan is what an edit decided: the new weights of the named versions, the
// journal entry it undoes (0: none), and whether to record it even when
// no weight changes.
type plan struct {
	weights map[string]float64
	undoes  int64
	force   bool
}

// edit runs one locked read-decide-write-journal cycle.
func (e *WeightEditor) edit(model, who, note string, decide func([]VersionWeight, []Entry) (plan, error)) (Change, error) {
	target, err := e.target()
	if err != nil {
		return Change{}, err
	}
	unlock, err := lockFile(target)
	if err != nil {
		return Change{}, err
	}
	defer unlock()

	raw, err := os.ReadFile(target)
	if err != nil {
		return Change{}, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := Parse(raw)
	if err != nil {
		return Change{}, fmt.Errorf("the config file is not valid now; fix it first: %w", err)
	}
	mi := slices.IndexFunc(cfg.Models, func(m Model) bool { return m.Name == model })
	if mi < 0 {
		return Change{}, refusal{fmt.Errorf("no model %q in the config (models: %s)", model, modelNames(cfg))}
	}
	before := WeightsOf(cfg)[mi].Versions
	j := e.journal(cfg)
	all, err := j.read()
	if err != nil {
		return Change{}, err
	}
	hist := forModel(all, model)
	pl, err := decide(before, hist)
	if err != nil {
		return Change{}, refusal{err}
	}
	want := pl.weights
	for name, w := range want {
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return Change{}, refusal{fmt.Errorf("weight of %s: must be a finite number >= 0, got %s", name, fmtFloat(w))}
		}
	}
	after := make([]VersionWeight, len(before))
	changed := map[string]float64{} // only these values are rewritten
	for i, v := range before {
		after[i] = v
		if w, ok := want[v.Version]; ok && w != v.Weight {
			after[i].Weight = w
			changed[v.Version] = w
		}
	}
	ch := Change{Model: model, Before: before, After: after, Hash: Hash(raw)}
	if sameWeights(before, after) && !pl.force {
		return ch, nil // nothing to change, nothing worth recording
	}
	if !sameWeights(before, after) {
		out, err := SpliceWeights(raw, mi, changed)
		if err != nil {
			return Change{}, refusal{err}
		}
		ncfg, err := Parse(out)
		if err != nil {
			return Change{}, refusal{fmt.Errorf("the new weights are not valid; the file is unchanged: %w", err)}
		}
		if got := WeightsOf(ncfg)[mi].Versions; !sameWeights(got, after) {
			return Change{}, fmt.Errorf("internal error: the edited file reads %s, not %s; the file is unchanged", FormatWeights(got), FormatWeights(after))
		}
		write := func() error { return writeAtomic(target, out) }
		if e.Apply != nil {
			err = e.Apply(ncfg, out, write)
		} else {
			err = write()
		}
		if err != nil {
			return Change{}, err
		}
		ch.Hash, ch.Changed = Hash(out), true
	}
	entry := Entry{Seq: nextSeq(all), When: e.now().UTC(), Who: who, Model: model,
		Before: before, After: after, Note: note, Undoes: pl.undoes}
	if err := j.append(entry); err != nil {
		if ch.Changed {
			return ch, fmt.Errorf("the weights were written but the journal was not (rollback cannot undo this change): %w", err)
		}
		return ch, err
	}
	return ch, nil
}

// target resolves Path through symlinks.
func (e *WeightEditor) target() (string, error) {
	t, err := filepath.EvalSymlinks(e.Path)
	if err != nil {
		return "", fmt.Errorf("reading config: %w", err)
	}
	return t, nil
}

// journal locates the journal. A relative state_dir is taken from the
// config file's directory, so that `vane weights` run from any directory
// and the server find the same journal.
func (e *WeightEditor) journal(cfg *Config) *journal {
	dir, base := filepath.Split(e.Path)
	if cfg.StateDir != "" {
		sd := cfg.StateDir
		if !filepath.IsAbs(sd) {
			sd = filepath.Join(dir, sd)
		}
		return &journal{path: filepath.Join(sd, JournalName)}
	}
	return &journal{path: filepath.Join(dir, "."+base+".weights.jsonl")}
}

func sameWeights(a, b []VersionWeight) bool {
	return slices.Equal(a, b)
}

func versionNames(vs []VersionWeight) string {
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = strconv.Quote(v.Version)
	}
	return strings.Join(names, ", ")
}

func modelNames(c *Config) string {
	names := make([]string, len(c.Models))
	for i, m := range c.Models {
		names[i] = strconv.Quote(m.Name)
	}
	return strings.Join(names, ", ")
}
