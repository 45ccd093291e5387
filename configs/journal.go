package configs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// JournalName is the weights journal's file name under state_dir.
const JournalName = "weights.jsonl"

// Entry is one line of the weights journal: one recorded weight change
// (or, when Before equals After, a note such as a rollout's pause).
type Entry struct {
	// Seq numbers the journal's entries from 1, in order.
	Seq int64 `json:"seq"`
	// When the change was written, UTC.
	When time.Time `json:"when"`
	// Who made it: the command ("vane weights set"), the admin endpoint
	// ("PUT /models/iris/weights") or "rollout".
	Who   string `json:"who"`
	Model string `json:"model"`
	// Before and After are all of the model's version weights, in config
	// order; exact (JSON numbers round-trip float64 exactly).
	Before []VersionWeight `json:"before"`
	After  []VersionWeight `json:"after"`
	// Note says why, when the writer said; a rollout's verdict, for one.
	Note string `json:"note,omitempty"`
	// Undoes is the Seq of the change a rollback undid; 0 otherwise.
	Undoes int64 `json:"undoes,omitempty"`
}

// journal is an append-only file of JSON lines. Appends happen under the
// config's edit lock (see lockFile), each line in one write(2) on a file
// opened O_APPEND and fsynced, so a reader never sees two lines
// interleaved; a crash can at worst leave a torn last line, which read
// ignores.
type journal struct{ path string }

// read returns every entry, oldest first; a missing journal is empty.
func (j *journal) read() ([]Entry, error) {
	data, err := os.ReadFile(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the weights journal: %w", err)
	}
	var out []Entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		ln := bytes.TrimSpace(sc.Bytes())
		if len(ln) == 0 {
			continue
		}
		var e Entry
		if err := json.Unmarshal(ln, &e); err != nil {
			if n == bytes.Count(data, []byte("\n"))+1 {
				break // a torn last line without its newline: the write never finished
			}
			return nil, fmt.Errorf("weights journal %s line %d: %w", j.path, n, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the weights journal: %w", err)
	}
	return out, nil
}

// append adds e as one line, creating the journal (and its directory).
func (j *journal) append(e Entry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding journal entry: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(j.path), 0o755); err != nil {
		return fmt.Errorf("creating the journal's directory: %w", writeErrCause(err))
	}
	f, err := os.OpenFile(j.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the weights journal: %w", writeErrCause(err))
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing the weights journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing the weights journal: %w", err)
	}
	return f.Close()
}

// forModel keeps the entries of one model, in order.
func forModel(all []Entry, model string) []Entry {
	var out []Entry
	for _, e := range all {
		if e.Model == model {
			out = append(out, e)
		}
	}
	return out
}

func nextSeq(all []Entry) int64 {
	var last int64
	for _, e := range all {
		last = max(last, e.Seq)
	}
	return last + 1
}

// undoTarget finds the change a rollback undoes: the newest entry that
// changed weights, is not itself a rollback and was not undone already.
func undoTarget(hist []Entry) (Entry, bool) {
	undone := map[int64]bool{}
	for i := len(hist) - 1; i >= 0; i-- {
		e := hist[i]
		switch {
		case e.Undoes != 0:
			undone[e.Undoes] = true
		case undone[e.Seq], sameWeights(e.Before, e.After):
		default:
			return e, true
		}
	}
	return Entry{}, false
}

// LastEntry returns the newest journal entry of model, ok false when it
// has none. A rollout reads it to learn whether it failed or paused
// before a restart.
func (e *WeightEditor) LastEntry(model string) (Entry, bool, error) {
	hist, err := e.History(model)
	if err != nil || len(hist) == 0 {
		return Entry{}, false, err
	}
	return hist[len(hist)-1], true, nil
}
