package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// AlertStateFormat tags the file in which the cusum detector keeps its
// evidence and alerts across restarts, next to the learned reference:
// <state_dir>/references/<model>/<version>.alerts.json. It belongs to
// one reference (reference_created_at): a state file of another is
// ignored.
const AlertStateFormat = "vane-alerts/v1"

// alertStateFile is the JSON document of AlertStateFormat.
type alertStateFile struct {
	Format             string                       `json:"format"`
	ReferenceCreatedAt time.Time                    `json:"reference_created_at"`
	Features           map[string]alertStateFeature `json:"features"`
}

type alertStateFeature struct {
	Alert bool                  `json:"alert"`
	Since *time.Time            `json:"since,omitempty"`
	Sums  map[string][2]float64 `json:"sums"` // statistic -> [up, down]
}

// alertStatePath is where the alert state of the reference saved at
// refPath goes.
func alertStatePath(refPath string) string {
	return strings.TrimSuffix(refPath, ".json") + ".alerts.json"
}

// alertState renders the version's cusum sums and alerts; nil when there
// is nothing to keep (no reference saved, or the detector is not cusum).
func (v *versionState) alertState() *alertStateFile {
	if v.set.detector != detectorCUSUM || v.set.refMode != refWarmup || v.ref == nil || v.ref.created.IsZero() {
		return nil
	}
	s := &alertStateFile{Format: AlertStateFormat, ReferenceCreatedAt: v.ref.created.UTC(),
		Features: map[string]alertStateFeature{}}
	for _, f := range v.features {
		af := alertStateFeature{Alert: f.alert, Sums: map[string][2]float64{}}
		if f.alert {
			t := f.since.UTC()
			af.Since = &t
		}
		for st := range numSeqStats {
			if c := &f.seq[st]; c.on {
				af.Sums[st.String()] = [2]float64{c.up, c.down}
			}
		}
		if len(af.Sums) > 0 {
			s.Features[f.name] = af
		}
	}
	return s
}

// restoreAlerts reads the alert state saved for the version's reference
// and takes it up: a restart keeps raised alerts and the evidence so far.
func (v *versionState) restoreAlerts(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var s alertStateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("decoding JSON: %w", err)
	}
	if s.Format != AlertStateFormat {
		return fmt.Errorf("format is %q, want %q", s.Format, AlertStateFormat)
	}
	if v.ref == nil || !s.ReferenceCreatedAt.Equal(v.ref.created) {
		return errors.New("it belongs to another reference")
	}
	cal := v.calibrate(v.ref, &v.set)
	for name, af := range s.Features {
		fr := v.ref.features[name]
		f := v.feature(name)
		if fr == nil || f == nil {
			continue
		}
		for _, st := range seqStats(fr) {
			c := &f.seq[st]
			c.on = true
			if sums, ok := af.Sums[st.String()]; ok && sums[0] >= 0 && sums[1] >= 0 {
				c.up, c.down = min(sums[0], 2*cal.h), min(sums[1], 2*cal.h)
			}
			f.seqScore = max(f.seqScore, c.up, c.down)
		}
		f.seqH, f.seqP = cal.h, seqPValue(f.seqScore, cal)
		if af.Alert {
			f.alert = true
			if af.Since != nil {
				f.since = *af.Since
			}
		}
		v.setDetected(f)
	}
	return nil
}
