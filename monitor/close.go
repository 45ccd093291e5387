package monitor

import (
	"sort"
	"time"

	"github.com/vaneproxy/vane/monitor/decode"
)

// A window close runs in two steps so that the version's lock is held
// only briefly. Under the lock, closeWindow hands the window's buffers to
// a closedWindow and the next window starts at once; then finish, outside
// the lock (closes of one version in order, under closeMu), sorts the
// values and computes every statistic against the immutable reference,
// and takes the lock again only to publish the results, judge the alerts
// and recycle the buffers.

// closedWindow is one closed window on its way to being judged.
type closedWindow struct {
	ref       *refProfile // what it is compared with; nil for nothing
	set       settings    // the settings at the close
	now       time.Time
	window    int    // its number (1-based)
	rows      int    // rows it held
	statePath string // where the version's state persists; "" for nowhere
	features  []closedFeature
}

// closedFeature is one feature's part of a closed window and, once
// computed, its results.
type closedFeature struct {
	f    *feature
	kind kind
	n    int
	vals []float64          // numeric values (sorted by compute)
	cats map[string]float64 // category counts

	tests []testResult
	seq   [numSeqStats]cusum // the cusum statistics after this window
	score float64            // the largest sum
	p     float64            // the corrected sequential p-value
}

// ingest takes one sample's rows: apply, then finish the windows they
// closed. It must not be called with v.mu held.
func (v *versionState) ingest(rows []decode.Row, now time.Time, ev []alertEvent) ([]alertEvent, *persistJob) {
	ev, job := v.apply(rows, now, ev)
	return v.finish(ev, job)
}

// finish computes and publishes the windows closed so far, oldest first,
// and adds the alert state to save, when due, to job. When another
// goroutine is finishing the version's windows already, it returns at
// once: that one takes the new window too, or — if it was just leaving —
// the version's next sample or the next tick of the max_age ticker does.
// So a worker never waits for another's statistics.
func (v *versionState) finish(ev []alertEvent, job *persistJob) ([]alertEvent, *persistJob) {
	v.mu.Lock()
	if len(v.pending) == 0 {
		job = v.withAlerts(job)
		v.mu.Unlock()
		return ev, job
	}
	v.mu.Unlock()
	if !v.closeMu.TryLock() {
		return ev, job
	}
	defer v.closeMu.Unlock()
	for {
		v.mu.Lock()
		if len(v.pending) == 0 || v.retired {
			v.pending = nil
			job = v.withAlerts(job)
			v.mu.Unlock()
			return ev, job
		}
		cw := v.pending[0]
		v.pending[0] = nil
		v.pending = v.pending[1:]
		v.mu.Unlock()

		cal := v.compute(cw)

		v.mu.Lock()
		if !v.retired {
			ev = v.publish(cw, cal, ev)
		}
		v.mu.Unlock()
	}
}

// compute runs every method on each feature of the closed window, the
// correction across them, and the cusum step. It reads the features'
// sums, which only publish writes (holding closeMu, as the caller does).
func (v *versionState) compute(cw *closedWindow) *calibration {
	cusumOn := cw.set.detector == detectorCUSUM && cw.ref != nil
	if cw.ref != v.binRef {
		v.exportReference(cw.ref)
		v.binRef = cw.ref
	}
	for i := range cw.features {
		cf := &cw.features[i]
		cf.seq = cf.f.seq
		if cf.kind == kindNumeric {
			sort.Float64s(cf.vals)
		}
		if cw.ref == nil || cf.n == 0 {
			continue
		}
		fr := cw.ref.features[cf.f.name]
		if fr == nil || fr.kind != cf.kind {
			continue
		}
		cf.tests = compare(cf, fr, &cw.set, nil)
		v.exportBins(cf.f.name, fr, binCounts(cf, fr))
		if cusumOn {
			standardize(cf, fr)
		}
	}
	correct(cw.features, cw.set.correction)
	var cal *calibration
	if cusumOn {
		cal = v.calibrate(cw.ref, &cw.set)
	}
	for i := range cw.features {
		cf := &cw.features[i]
		for j := range cf.tests {
			cf.tests[j].drifted = cf.tests[j].verdict()
		}
		if cal != nil && len(cf.tests) > 0 {
			cf.score = stepSums(&cf.seq, cal)
			cf.p = seqPValue(cf.score, cal)
		}
	}
	if cw.set.refMode == refVersion && cw.set.refVersion == v.version {
		v.published.Store(windowProfile(cw, v.version))
	}
	return cal
}

// publish stores a computed window's results on the features, sets the
// metrics, judges the alerts and recycles the buffers. v.mu is held.
func (v *versionState) publish(cw *closedWindow, cal *calibration, ev []alertEvent) []alertEvent {
	v.judging = cw.window
	v.windowsClosed, v.lastClose, v.lastRows = cw.window, cw.now, cw.rows
	v.met.windowsClosed.Inc()
	for i := range cw.features {
		cf := &cw.features[i]
		f := cf.f
		f.tests, f.lastN = cf.tests, cf.n
		if f.spareVals == nil {
			f.spareVals = cf.vals[:0]
		}
		if f.spareCats == nil && cf.cats != nil {
			clear(cf.cats)
			f.spareCats = cf.cats
		}
		if len(f.tests) == 0 {
			continue
		}
		drifted := false
		for _, t := range f.tests {
			drifted = drifted || (t.drifted && cw.set.alertOn[t.method])
			v.mm.score.WithLabelValues(v.model, v.version, f.name, t.method.String()).Set(t.stat)
			if t.method.hasPValue() {
				v.mm.pValue.WithLabelValues(v.model, v.version, f.name, t.method.String()).Set(t.pAdj)
			}
		}
		if cal == nil {
			ev = v.judge(f, drifted, cw.now, ev)
			continue
		}
		f.seq, f.seqScore, f.seqH, f.seqP = cf.seq, cf.score, cal.h, cf.p
		v.mm.pValue.WithLabelValues(v.model, v.version, f.name, methodCUSUM).Set(f.seqP)
		ev = v.judgeSeq(f, cw.now, ev)
	}
	if cal != nil && cw.statePath != "" {
		v.alertsDue = true
	}
	return ev
}

// windowProfile copies a closed window (numeric values sorted) into a
// reference for the versions compared with this one.
func windowProfile(cw *closedWindow, version string) *refProfile {
	p := &refProfile{source: refVersion.String(), origin: version, rows: cw.rows,
		features: map[string]*featureRef{}}
	for _, cf := range cw.features {
		if cf.n == 0 {
			continue
		}
		if cf.kind == kindNumeric {
			p.features[cf.f.name] = numericRef(append([]float64(nil), cf.vals...), cw.set.bins)
		} else {
			p.features[cf.f.name] = categoricalRef(cf.cats) // reads the counts, keeps none
		}
		p.names = append(p.names, cf.f.name)
	}
	return p
}
