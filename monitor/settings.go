package monitor

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/monitor/decode"
)

// method indexes the drift methods in report order.
type method int

const (
	methodKS method = iota
	methodPSI
	methodJS
	methodWasserstein
	methodChi2
	numMethods
)

var methodNames = [numMethods]string{configs.MethodKS, configs.MethodPSI, configs.MethodJS,
	configs.MethodWasserstein, configs.MethodChi2}

func (m method) String() string { return methodNames[m] }

// hasPValue reports whether the method is a test with a p-value (which the
// correction adjusts and the threshold bounds from above).
func (m method) hasPValue() bool { return m == methodKS || m == methodChi2 }

// refMode is where a version's reference comes from.
type refMode int

const (
	refWarmup  refMode = iota // the version's first rows
	refFile                   // a saved profile
	refVersion                // a version's most recent closed window
)

func (r refMode) String() string {
	return [...]string{"warmup", "file", "version"}[r]
}

// settings are one model's monitor settings as the monitor uses them,
// derived from the config. The config's defaults are applied (configs.Parse,
// or configs.ApplyDefaults for one built in code): the values are used as
// they are.
type settings struct {
	spec *decode.Spec

	refMode    refMode
	warmup     int
	refFile    string // as configured
	refVersion string

	window    int
	minWindow int
	maxAge    time.Duration // 0: windows close only when full

	bins        int
	consecutive int
	correction  string
	thresholds  [numMethods]float64
	alertOn     [numMethods]bool
	webhookURL  string
	alertShape  *alertShape // labels, severity, generatorURL (webhook.go)

	detector       string  // detectorCUSUM or detectorWindow
	falseAlarmRate float64 // cusum: false alerts per window per version
}

// The alert detectors of monitor.detector.
const (
	detectorCUSUM  = configs.DetectorCUSUM
	detectorWindow = configs.DetectorWindow
)

// methodCUSUM labels the sequential detector's p-value in
// vane_drift_p_value.
const methodCUSUM = "cusum"

func newSettings(mc *configs.Model) settings {
	mon := &mc.Monitor
	s := settings{
		spec: &decode.Spec{
			Protocol:       mc.Protocol,
			Features:       slices.Clone(mon.Features),
			Paths:          maps.Clone(mon.Paths),
			PredictionPath: mon.PredictionPath,
		},
		window:      mon.Window,
		minWindow:   mon.MinWindow,
		maxAge:      mon.MaxAge,
		bins:        mon.Bins,
		consecutive: mon.Consecutive,
		correction:  mon.Correction,
		webhookURL:  mon.WebhookURL,
		alertShape:  newAlertShape(mon),

		detector:       mon.Detector,
		falseAlarmRate: mon.FalseAlarmRate,
	}
	switch ref := mon.Reference; {
	case ref.File != "":
		s.refMode, s.refFile = refFile, ref.File
	case ref.Version != "":
		s.refMode, s.refVersion = refVersion, ref.Version
	default:
		s.refMode, s.warmup = refWarmup, ref.Warmup
	}
	th := mon.Thresholds
	s.thresholds = [numMethods]float64{
		methodKS:          th.KS,
		methodPSI:         th.PSI,
		methodJS:          th.JS,
		methodWasserstein: th.Wasserstein,
		methodChi2:        th.Chi2,
	}
	for _, name := range mon.AlertOn {
		if i := slices.Index(methodNames[:], name); i >= 0 {
			s.alertOn[i] = true
		}
	}
	return s
}

// decodeKey identifies what the features mean: a change resets the
// version's whole state, since old values and new ones no longer measure
// the same thing.
func (s *settings) decodeKey() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00%s\x00%s\x00", s.spec.Protocol, strings.Join(s.spec.Features, "\x01"), s.spec.PredictionPath)
	keys := make([]string, 0, len(s.spec.Paths))
	for k := range s.spec.Paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + "=" + s.spec.Paths[k] + "\x01")
	}
	return b.String()
}

// refKey identifies the reference; fileHash is the content hash of a
// file reference. A change resets the reference, the live window and the
// alerts (comparisons against another reference do not continue a run).
func (s *settings) refKey(fileHash string) string {
	switch s.refMode {
	case refFile:
		return "file\x00" + s.refFile + "\x00" + fileHash
	case refVersion:
		return "version\x00" + s.refVersion
	}
	return fmt.Sprintf("warmup\x00%d", s.warmup)
}

// windowKey identifies how windows close: a change restarts the current
// live window (its rows so far are dropped) and keeps the rest.
func (s *settings) windowKey() string {
	return fmt.Sprintf("%d\x00%d\x00%d", s.window, s.minWindow, s.maxAge)
}
