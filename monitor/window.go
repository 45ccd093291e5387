package monitor

import (
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaneproxy/vane/monitor/decode"
)

// versionState is the monitor's state for one (model, version): its
// features, reference, live window, last results and alerts.
type versionState struct {
	model, version string
	met            versionMetrics
	mm             *metrics
	log            *slog.Logger

	// Report counters, read without the lock.
	nSamples, nRows, nDecodeErrors atomic.Uint64

	// published is this version's last closed window as a reference, for
	// the versions whose reference is this one (reference.version).
	published atomic.Pointer[refProfile]

	mu sync.Mutex // guards every field below
	// retired: Configure replaced or removed this state; a worker still
	// holding it must change nothing.
	retired bool

	set                          settings
	decodeKey, refKey, windowKey string

	ref        *refProfile   // warmup (learned or loaded) or file; nil while learning and in version mode
	src        *versionState // version mode: the version whose window is the reference (maybe this one)
	refRows    int           // warmup: rows taken into the reference so far
	statePath  string        // where the learned reference persists; "" for nowhere
	persisted  string        // the path the learned reference was last written to
	rng        *rand.Rand    // warmup: the reservoir's random source
	refusals   int           // warmups refused by the split-half test
	refusedWhy string        // why the last one was

	features []*feature
	index    map[string]int // feature name -> features index
	// byPos remembers the feature met at each position of a row
	// (predictions first, then features): rows of one version name their
	// fields alike and in the same order, so a string comparison usually
	// replaces a map lookup per field.
	byPos []*feature

	winRows       int       // rows in the current window
	winStart      time.Time // when the current window took its first row
	windowsClosed int
	lastClose     time.Time
	lastRows      int

	closes    int             // windows closed, judged or not yet (windowsClosed counts the judged)
	judging   int             // the number of the window being judged
	alertsDue bool            // a window closed since the alert state was last handed out for saving
	pending   []*closedWindow // closed windows waiting for finish, oldest first

	// closeMu serializes finishing closed windows, so that their results
	// are applied in order while the statistics are computed outside mu.
	// Lock order: closeMu, then mu.
	closeMu sync.Mutex
	cal     calibration // the cusum threshold for the reference; guarded by closeMu
	binRef  *refProfile // the reference whose bins are exported; guarded by closeMu
}

// feature is one feature of a version.
type feature struct {
	name string
	kind kind

	learn *learner // warmup: the reference being learned; nil when none

	vals []float64          // live window: numeric values
	cats map[string]float64 // live window: category counts
	n    int                // live window: values taken

	spareVals []float64          // a closed window's buffer, for the next window
	spareCats map[string]float64 // likewise, cleared

	tests    []testResult // the last closed window's tests; empty when none ran
	lastN    int          // values in the last closed window
	alert    bool         // raised (after hysteresis)
	since    time.Time    // when the alert was raised
	driftRun int          // drifted windows in a row
	cleanRun int          // clean windows in a row

	seq      [numSeqStats]cusum // the sequential detector's statistics and sums
	seqScore float64            // the largest sum after the last close
	seqH     float64            // the threshold it was judged against
	seqP     float64            // the corrected p-value behind the verdict
}

func newVersionState(model, version string, mm *metrics, log *slog.Logger) *versionState {
	return &versionState{model: model, version: version, mm: mm, met: mm.forVersion(model, version),
		log: log.With("model", model, "version", version), index: map[string]int{}, rng: rngFor(model, version)}
}

// feature returns the feature called name, registering it when there is
// room; nil when the name is over the cap.
func (v *versionState) feature(name string) *feature {
	if i, ok := v.index[name]; ok {
		return v.features[i]
	}
	if len(v.features) >= MaxFeatures || len(name) > maxFeatureName || name == "" {
		return nil
	}
	f := &feature{name: strings.Clone(name)}
	v.index[f.name] = len(v.features)
	v.features = append(v.features, f)
	return f
}

// learning reports whether rows go to the reference rather than a window.
func (v *versionState) learning() bool {
	return v.set.refMode == refWarmup && v.ref == nil
}

// reference is what the current window is compared with, nil for none.
func (v *versionState) reference() *refProfile {
	if v.set.refMode != refVersion {
		return v.ref
	}
	if v.src == nil {
		return nil
	}
	return v.src.published.Load().withBins(v.set.bins)
}

// persistJob is a learned reference to write to the state directory.
type persistJob struct {
	path    string
	profile *profileFile // nil when only the alert state is to be written

	alertsPath string          // the cusum alert state, when alerts is set
	alerts     *alertStateFile // nil for none
}

// apply takes the rows of one sample: into the reference while it is
// learned, else into the live window, closing it when full or aged out.
// Alert changes are appended to ev; a reference to persist is returned.
func (v *versionState) apply(rows []decode.Row, now time.Time, ev []alertEvent) ([]alertEvent, *persistJob) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.retired {
		return ev, nil
	}
	ev = v.closeIfAged(now, ev)
	var job *persistJob
	for i := range rows {
		learning := v.learning()
		// Predictions first: a payload with more input columns than the
		// feature cap must not crowd the predictions out.
		for j := range rows[i].Predictions {
			v.observe(&rows[i].Predictions[j], j, learning)
		}
		np := len(rows[i].Predictions)
		for j := range rows[i].Features {
			v.observe(&rows[i].Features[j], np+j, learning)
		}
		if learning {
			v.refRows++
			v.met.referenceRows.Set(float64(v.refRows))
			if v.refRows >= v.set.warmup {
				job = v.freeze(now)
			}
			continue
		}
		if v.winRows == 0 {
			v.winStart = now
		}
		v.winRows++
		if v.winRows >= v.set.window {
			ev = v.closeWindow(now, ev)
		}
	}
	v.nRows.Add(uint64(len(rows)))
	v.met.rows.Add(float64(len(rows)))
	return ev, job
}

// featureAt is feature(name) for the field at position pos of a row.
func (v *versionState) featureAt(pos int, name string) *feature {
	if pos < len(v.byPos) {
		if f := v.byPos[pos]; f != nil && f.name == name {
			return f
		}
	}
	f := v.feature(name)
	if f != nil && pos < MaxFeatures {
		for len(v.byPos) <= pos {
			v.byPos = append(v.byPos, nil)
		}
		v.byPos[pos] = f
	}
	return f
}

// observe takes one value, the field at position pos of its row, into the
// reference being learned or the window.
func (v *versionState) observe(fl *decode.Field, pos int, learning bool) {
	f := v.featureAt(pos, fl.Name)
	if f == nil {
		v.met.featuresIgnored.Inc()
		return
	}
	k := kindNumeric
	if fl.Value.IsCat {
		k = kindCategorical
	}
	switch {
	case f.kind == kindUnknown:
		f.kind = k
	case f.kind != k:
		v.met.kindMismatch.Inc()
		return
	}
	if k == kindCategorical {
		if learning {
			v.learnCategory(f, fl.Value.Cat)
		} else {
			f.cats = addCategory(f.cats, fl.Value.Cat)
			f.n++
		}
		return
	}
	x := fl.Value.Num
	if math.IsNaN(x) || math.IsInf(x, 0) {
		v.met.nonFinite.Inc()
		return
	}
	// Bounded even when a payload repeats a name within its rows: a
	// feature never holds more values than the warmup or the window has rows.
	if learning {
		if f.learn == nil || f.learn.seen < v.set.warmup {
			v.learnNumeric(f, x)
		}
	} else if len(f.vals) < v.set.window {
		f.vals = append(f.vals, x)
		f.n++
	}
}

// addCategory counts one c in counts, folding new categories beyond the
// cap into OtherCategory. Only a new category copies its name.
func addCategory(counts map[string]float64, c string) map[string]float64 {
	if counts == nil {
		counts = make(map[string]float64)
	}
	if _, ok := counts[c]; ok {
		counts[c]++
	} else if len(counts) < maxCategories-1 {
		counts[strings.Clone(c)] = 1
	} else {
		counts[OtherCategory]++
	}
	return counts
}

// persistJob returns the learned reference to write, when there is one
// that the state directory does not hold yet.
func (v *versionState) persistJob(now time.Time) *persistJob {
	if v.set.refMode != refWarmup || v.ref == nil || v.statePath == "" || v.persisted == v.statePath {
		return nil
	}
	return &persistJob{path: v.statePath,
		profile: profileOf(v.ref, v.model, v.version, v.set.warmup, now.UTC())}
}

// withAlerts adds the alert state to job when a window closed since it
// was last handed out and the reference it belongs to is saved.
func (v *versionState) withAlerts(job *persistJob) *persistJob {
	if !v.alertsDue || v.statePath == "" || (v.persisted != v.statePath && (job == nil || job.profile == nil)) {
		return job
	}
	s := v.alertState()
	if s == nil {
		return job
	}
	v.alertsDue = false
	if job == nil {
		job = &persistJob{}
	}
	job.alertsPath, job.alerts = alertStatePath(v.statePath), s
	return job
}

// persistedTo records that the learned reference is saved at path.
func (v *versionState) persistedTo(path string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.persisted = path
}

// closeIfAged closes the window when max_age has passed since its first
// row and it holds min_window rows.
func (v *versionState) closeIfAged(now time.Time, ev []alertEvent) []alertEvent {
	if v.set.maxAge > 0 && v.winRows > 0 && v.winRows >= v.set.minWindow && now.Sub(v.winStart) >= v.set.maxAge {
		ev = v.closeWindow(now, ev)
	}
	return ev
}

// closeAged is closeIfAged for the ticker.
func (v *versionState) closeAged(now time.Time, ev []alertEvent) []alertEvent {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.retired {
		return ev
	}
	return v.closeIfAged(now, ev)
}

// resetWindow drops the current window's rows.
func (v *versionState) resetWindow() {
	for _, f := range v.features {
		f.vals = f.vals[:0]
		clear(f.cats)
		f.n = 0
	}
	v.winRows = 0
}

// closeWindow ends the current window: its buffers are handed to a
// closedWindow, queued for finish (which computes the statistics outside
// the lock), and the next window starts at once with spare buffers.
func (v *versionState) closeWindow(now time.Time, ev []alertEvent) []alertEvent {
	ref := v.reference()
	v.closes++
	if v.set.refMode == refVersion {
		ready, rows := 0.0, 0.0
		if ref != nil {
			ready, rows = 1, float64(ref.rows)
		}
		v.met.referenceReady.Set(ready)
		v.met.referenceRows.Set(rows)
	}
	cw := &closedWindow{ref: ref, set: v.set, now: now, window: v.closes, rows: v.winRows,
		statePath: v.statePath, features: make([]closedFeature, 0, len(v.features))}
	for _, f := range v.features {
		cf := closedFeature{f: f, kind: f.kind, n: f.n, vals: f.vals, cats: f.cats}
		f.vals, f.cats = f.spareVals[:0], f.spareCats
		f.spareVals, f.spareCats = nil, nil
		cw.features = append(cw.features, cf)
	}
	v.pending = append(v.pending, cw)
	v.resetWindow()
	return ev
}
