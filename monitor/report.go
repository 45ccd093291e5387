package monitor

import (
	"encoding/json"
	"math"
	"net/http"
	"time"
)

// Report is the GET /drift answer: per model, per version, the last closed
// window's tests against the reference and each feature's alert state.
type Report struct {
	Models []ModelReport `json:"models"`
}

// ModelReport is one model of a Report, versions in config order.
type ModelReport struct {
	Model    string          `json:"model"`
	Versions []VersionReport `json:"versions"`
}

// VersionReport is one version of a ModelReport.
type VersionReport struct {
	Version string `json:"version"`
	// ReferenceSource is warmup, file or version; ReferenceOrigin names
	// the file (or saved state) read, or the reference version.
	ReferenceSource string `json:"reference_source"`
	ReferenceOrigin string `json:"reference_origin,omitempty"`
	// ReferenceReady: windows have something to be compared with.
	ReferenceReady bool `json:"reference_ready"`
	// ReferenceSize is the reference's rows (while warming up: so far).
	ReferenceSize int `json:"reference_size"`
	// WindowSize is the configured rows per window (monitor.window).
	WindowSize    int `json:"window_size"`
	WindowsClosed int `json:"windows_closed"`
	// LastWindowRows is the last closed window's rows (fewer than
	// WindowSize when max_age closed it); CurrentWindowRows the open one's.
	LastWindowRows     int        `json:"last_window_rows"`
	LastWindowClosedAt *time.Time `json:"last_window_closed_at,omitempty"`
	CurrentWindowRows  int        `json:"current_window_rows"`
	// Samples were taken off the queue; DecodeErrors of them could not be
	// decoded; Rows were decoded from the rest.
	Samples      uint64 `json:"samples"`
	DecodeErrors uint64 `json:"decode_errors"`
	Rows         uint64 `json:"rows"`
	// Detector is monitor.detector (cusum or window); FalseAlarmRate the
	// cusum detector's target of false alerts per window per version.
	Detector       string  `json:"detector"`
	FalseAlarmRate float64 `json:"false_alarm_rate,omitempty"`
	// ReferenceRefusals counts warmups refused because they drifted within
	// themselves (split-half test); ReferenceRefused says why the last was.
	ReferenceRefusals int             `json:"reference_refusals"`
	ReferenceRefused  string          `json:"reference_refused,omitempty"`
	Features          []FeatureReport `json:"features"`
}

// SequentialReport is a feature's sequential (cusum) detector state
// after the last closed window.
type SequentialReport struct {
	// Score is the largest CUSUM; the alert is raised when it passes
	// Threshold and cleared when it is back at or below half of it.
	Score     float64 `json:"score"`
	Threshold float64 `json:"threshold"`
	// PValue is the corrected p-value behind the verdict: the version's
	// false-alarm rate per window were the threshold at Score.
	PValue     float64          `json:"p_value"`
	Statistics []SequentialStat `json:"statistics"`
}

// SequentialStat is one standardized statistic (mean, scale, chi2) and
// its CUSUMs; Down is set for the two-sided ones (mean, scale).
type SequentialStat struct {
	Name string   `json:"name"`
	Z    float64  `json:"z"`
	Up   float64  `json:"up"`
	Down *float64 `json:"down,omitempty"`
}

// FeatureReport is one feature (or prediction) of a VersionReport.
// Features whose kind is not known yet (no value seen) are left out.
type FeatureReport struct {
	Feature string `json:"feature"`
	Kind    string `json:"kind"` // numeric or categorical
	// Drifted is the alert state after hysteresis; AlertSince when it was
	// raised.
	Drifted    bool       `json:"drifted"`
	AlertSince *time.Time `json:"alert_since,omitempty"`
	// ReferenceCount and LastWindowCount are the values compared: in the
	// reference and in the last closed window; LiveCount is in the open
	// window.
	ReferenceCount  int          `json:"reference_count"`
	LastWindowCount int          `json:"last_window_count"`
	LiveCount       int          `json:"live_count"`
	Tests           []TestReport `json:"tests"`
	// Histogram is the reference against the open window (histogram.go).
	Histogram *Histogram `json:"histogram,omitempty"`
	// Sequential is the cusum detector's state, once a window was judged.
	Sequential *SequentialReport `json:"sequential,omitempty"`
}

// TestReport is one method's result on the last closed window.
type TestReport struct {
	Method    string  `json:"method"`
	Statistic float64 `json:"statistic"`
	// PValue (raw) and PValueAdjusted (after the correction across the
	// version's features) are set for ks and chi2 only.
	PValue         *float64 `json:"p_value,omitempty"`
	PValueAdjusted *float64 `json:"p_value_adjusted,omitempty"`
	Threshold      float64  `json:"threshold"`
	// Drifted is this window's verdict.
	Drifted bool `json:"drifted"`
}

// Report returns the drift report of the applied config.
func (m *Monitor) Report() Report {
	r := Report{Models: []ModelReport{}}
	snap := m.snap.Load()
	if snap == nil {
		return r
	}
	for _, ms := range snap.order {
		mr := ModelReport{Model: ms.name, Versions: make([]VersionReport, 0, len(ms.order))}
		for _, v := range ms.order {
			mr.Versions = append(mr.Versions, v.report())
		}
		r.Models = append(r.Models, mr)
	}
	return r
}

func (v *versionState) report() VersionReport {
	v.mu.Lock()
	defer v.mu.Unlock()
	ref := v.reference()
	vr := VersionReport{
		Version:           v.version,
		ReferenceSource:   v.set.refMode.String(),
		ReferenceReady:    ref != nil,
		ReferenceSize:     v.refRows,
		WindowSize:        v.set.window,
		WindowsClosed:     v.windowsClosed,
		LastWindowRows:    v.lastRows,
		CurrentWindowRows: v.winRows,
		Samples:           v.nSamples.Load(),
		DecodeErrors:      v.nDecodeErrors.Load(),
		Rows:              v.nRows.Load(),
		Detector:          v.set.detector,
		ReferenceRefusals: v.refusals,
		ReferenceRefused:  v.refusedWhy,
		Features:          make([]FeatureReport, 0, len(v.features)),
	}
	if v.set.detector == detectorCUSUM {
		vr.FalseAlarmRate = v.set.falseAlarmRate
	}
	if ref != nil {
		vr.ReferenceSize, vr.ReferenceOrigin = ref.rows, ref.origin
	} else if v.set.refMode == refVersion {
		vr.ReferenceOrigin = v.set.refVersion
	}
	if !v.lastClose.IsZero() {
		t := v.lastClose
		vr.LastWindowClosedAt = &t
	}
	for _, f := range v.features {
		if f.kind == kindUnknown {
			continue
		}
		fr := FeatureReport{Feature: f.name, Kind: f.kind.String(), Drifted: f.alert,
			LastWindowCount: f.lastN, LiveCount: f.n, Tests: make([]TestReport, 0, len(f.tests))}
		if f.alert {
			t := f.since
			fr.AlertSince = &t
		}
		if ref != nil {
			if r := ref.features[f.name]; r != nil {
				fr.ReferenceCount = r.n
				fr.Histogram = histogramOf(f, r)
			}
		}
		for _, t := range f.tests {
			tr := TestReport{Method: t.method.String(), Statistic: finite(t.stat), Threshold: t.threshold, Drifted: t.drifted}
			if t.method.hasPValue() {
				p, pa := finite(t.p), finite(t.pAdj)
				tr.PValue, tr.PValueAdjusted = &p, &pa
			}
			fr.Tests = append(fr.Tests, tr)
		}
		if v.set.detector == detectorCUSUM && f.seqH > 0 {
			fr.Sequential = f.seqReport()
		}
		vr.Features = append(vr.Features, fr)
	}
	return vr
}

// finite keeps the report encodable: JSON has no NaN or infinity.
func finite(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return 0
	case math.IsInf(x, 1):
		return math.MaxFloat64
	case math.IsInf(x, -1):
		return -math.MaxFloat64
	}
	return x
}

// Handler serves Report as JSON (GET /drift). ?model=NAME keeps one model;
// an unknown name is a 404 with a JSON error.
func (m *Monitor) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed; use GET"})
			return
		}
		rep := m.Report()
		if name := r.URL.Query().Get("model"); name != "" {
			var keep []ModelReport
			for _, mr := range rep.Models {
				if mr.Model == name {
					keep = append(keep, mr)
				}
			}
			if keep == nil {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such model", "model": name})
				return
			}
			rep.Models = keep
		}
		writeJSON(w, http.StatusOK, rep)
	})
}

func writeJSON(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(body)
}

func (f *feature) seqReport() *SequentialReport {
	r := &SequentialReport{Score: f.seqScore, Threshold: f.seqH, PValue: f.seqP, Statistics: []SequentialStat{}}
	for s := range numSeqStats {
		c := &f.seq[s]
		if !c.on {
			continue
		}
		st := SequentialStat{Name: s.String(), Z: c.z, Up: c.up}
		if s.twoSided() {
			d := c.down
			st.Down = &d
		}
		r.Statistics = append(r.Statistics, st)
	}
	return r
}
