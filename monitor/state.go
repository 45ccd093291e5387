package monitor

import "sort"

// versionFor returns the state of version name of ms under the new
// settings: prev, updated, when what its state depends on is unchanged
// (see Configure), else a new state; retired is prev when it is replaced.
func (m *Monitor) versionFor(prev *versionState, ms *modelState, name, stateDir string) (vs, retired *versionState) {
	set := ms.set
	dk, rk, wk := set.decodeKey(), set.refKey(ms.fileHash), set.windowKey()
	path := statePath(stateDir, ms.name, name)
	if prev != nil {
		if prev.reconfigure(set, dk, rk, wk, path, ms.fileRef) {
			return prev, nil
		}
		reason := "reference source changed"
		if prev.decodeKey != dk {
			reason = "protocol, features, paths or prediction_path changed"
		}
		m.log.Info("drift monitor state reset", "model", ms.name, "version", name, "reason", reason)
	}
	vs = newVersionState(ms.name, name, m.metrics, m.log)
	vs.set, vs.decodeKey, vs.refKey, vs.windowKey, vs.statePath = set, dk, rk, wk, path
	for _, f := range set.spec.Features {
		vs.feature(f)
	}
	paths := make([]string, 0, len(set.spec.Paths))
	for p := range set.spec.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		vs.feature(p)
	}
	switch set.refMode {
	case refFile:
		vs.useReference(ms.fileRef)
	case refWarmup:
		if path == "" {
			m.log.Warn("no state_dir: the drift reference this version learns is not saved; after a restart it is learned again from live traffic, which may have drifted, and a raised alert can clear. Set state_dir to keep it",
				"model", ms.name, "version", name, "warmup", set.warmup)
			break
		}
		ref, err := loadState(path, ms.name, name, set.warmup, set.bins)
		switch {
		case err != nil:
			m.log.Warn("ignoring saved drift reference; learning a new one", "model", ms.name,
				"version", name, "file", path, "err", err)
		case ref != nil:
			vs.useReference(ref)
			vs.persisted = path
			vs.refRows = ref.rows
			if err := vs.restoreAlerts(alertStatePath(path)); err != nil {
				m.log.Warn("ignoring saved drift alert state", "model", ms.name, "version", name,
					"file", alertStatePath(path), "err", err)
			}
			m.log.Info("drift reference loaded from state_dir", "model", ms.name, "version", name,
				"file", path, "rows", ref.rows, "features", len(ref.features))
		default:
			m.log.Info("drift reference will be learned from the first rows", "model", ms.name,
				"version", name, "warmup", set.warmup)
		}
	}
	ready := 0.0
	if vs.ref != nil {
		ready = 1
		vs.met.referenceRows.Set(float64(vs.ref.rows))
	}
	vs.met.referenceReady.Set(ready)
	return vs, prev
}

// reconfigure applies new settings to a state that keeps its meaning and
// reference, and reports whether it did; false means the state must be
// replaced.
func (v *versionState) reconfigure(set settings, dk, rk, wk, path string, fileRef *refProfile) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.decodeKey != dk || v.refKey != rk {
		return false
	}
	v.set = set
	v.statePath = path
	if v.windowKey != wk {
		v.resetWindow()
		v.windowKey = wk
		v.log.Info("drift window settings changed; current window restarted")
	}
	switch {
	case set.refMode == refFile:
		v.ref = fileRef
	case v.ref != nil:
		v.ref = v.ref.withBins(set.bins)
	}
	return true
}

// useReference installs ref and fixes the kinds of its features (those
// within the cap).
func (v *versionState) useReference(ref *refProfile) {
	v.ref = ref
	if ref == nil {
		return
	}
	for _, name := range ref.names {
		if f := v.feature(name); f != nil && f.kind == kindUnknown {
			f.kind = ref.features[name].kind
		}
	}
}
