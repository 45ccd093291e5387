package monitor

import (
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
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

	cal       calibration // the sequential detector's threshold for the reference
	alertsDue bool        // a window closed since the alert state was last handed out for saving
}

// feature is one feature of a version.
type feature struct {
	name string
	kind kind

	learn *learner // warmup: the reference being learned; nil when none

	vals []float64          // live window: numeric values
	cats map[string]float64 // live window: category counts
	n    int                // live window: values taken

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
	return ev, v.withAlerts(job)
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

// closeWindow compares the window with the reference, judges each
// feature, publishes the window when it is a reference, and starts the
// next window.
func (v *versionState) closeWindow(now time.Time, ev []alertEvent) []alertEvent {
	ref := v.reference()
	v.windowsClosed++
	v.lastClose = now
	v.lastRows = v.winRows
	v.met.windowsClosed.Inc()
	if v.set.refMode == refVersion {
		ready, rows := 0.0, 0.0
		if ref != nil {
			ready, rows = 1, float64(ref.rows)
		}
		v.met.referenceReady.Set(ready)
		v.met.referenceRows.Set(rows)
	}
	for _, f := range v.features {
		f.tests = f.tests[:0]
		f.lastN = f.n
		if f.kind == kindNumeric {
			sort.Float64s(f.vals)
		}
		if ref == nil || f.n == 0 {
			continue
		}
		if fr := ref.features[f.name]; fr != nil && fr.kind == f.kind {
			f.tests = compare(f, fr, &v.set, f.tests)
			if v.set.detector == detectorCUSUM {
				var cr, cl []float64
				if f.kind == kindCategorical {
					cr, cl = categoryTable(f, fr)
				}
				standardize(f, fr, cr, cl)
			}
		}
	}
	correct(v.features, v.set.correction)
	var cal *calibration
	if v.set.detector == detectorCUSUM && ref != nil {
		cal = v.calibrate(ref)
	}
	for _, f := range v.features {
		if len(f.tests) == 0 {
			continue
		}
		drifted := false
		for i := range f.tests {
			t := &f.tests[i]
			t.drifted = t.verdict()
			drifted = drifted || (t.drifted && v.set.alertOn[t.method])
			v.mm.score.WithLabelValues(v.model, v.version, f.name, t.method.String()).Set(t.stat)
			if t.method.hasPValue() {
				v.mm.pValue.WithLabelValues(v.model, v.version, f.name, t.method.String()).Set(t.pAdj)
			}
		}
		if cal == nil {
			ev = v.judge(f, drifted, now, ev)
			continue
		}
		f.seqScore, f.seqH = f.step(cal), cal.h
		f.seqP = seqPValue(f.seqScore, cal)
		v.mm.pValue.WithLabelValues(v.model, v.version, f.name, methodCUSUM).Set(f.seqP)
		ev = v.judgeSeq(f, now, ev)
	}
	if v.set.refMode == refVersion && v.set.refVersion == v.version {
		v.published.Store(v.windowProfile())
	}
	if cal != nil && v.statePath != "" {
		v.alertsDue = true
	}
	v.resetWindow()
	return ev
}

// windowProfile copies the closing window (numeric values sorted already)
// into a reference for the versions compared with this one.
func (v *versionState) windowProfile() *refProfile {
	p := &refProfile{source: refVersion.String(), origin: v.version, rows: v.winRows,
		features: map[string]*featureRef{}}
	for _, f := range v.features {
		if f.n == 0 {
			continue
		}
		if f.kind == kindNumeric {
			p.features[f.name] = numericRef(append([]float64(nil), f.vals...), v.set.bins)
		} else {
			p.features[f.name] = categoricalRef(f.cats) // reads the counts, keeps none
		}
		p.names = append(p.names, f.name)
	}
	return p
}
