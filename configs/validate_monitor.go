package configs

import (
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// monitor checks drift sampling: the sample, the windows, the reference,
// how features are found, and when and where alerts go.
func (v *validator) monitor(m *Model, p string) {
	mon := &m.Monitor
	v.unitRatio(p+".sample_rate", mon.SampleRate)
	v.atLeast(p+".max_body_bytes", mon.MaxBodyBytes, 0)
	// Two samples at least: min_window is 2..window.
	v.atLeast(p+".window", mon.Window, 2)
	v.windowClose(mon, p)
	v.reference(m, p+".reference")
	v.features(mon, p+".features")
	v.rawPaths(m, p)

	if mon.Bins < 2 || mon.Bins > MaxBins {
		v.add(p+".bins", "must be >= 2 and <= %d, got %d", MaxBins, mon.Bins)
	}
	v.atLeast(p+".consecutive", mon.Consecutive, 1)
	switch mon.Correction {
	case CorrectionBonferroni, CorrectionFDR, CorrectionNone:
	default:
		v.add(p+".correction", "must be one of bonferroni, fdr, none; got %q", mon.Correction)
	}
	switch mon.Detector {
	case DetectorCUSUM, DetectorWindow:
	default:
		v.add(p+".detector", "must be one of cusum, window; got %q", mon.Detector)
	}
	if !(mon.FalseAlarmRate > 0 && mon.FalseAlarmRate <= 0.1) {
		v.add(p+".false_alarm_rate", "must be > 0 and <= 0.1 (false alerts per window per version), got %s", fmtFloat(mon.FalseAlarmRate))
	}
	v.thresholds(&mon.Thresholds, p+".thresholds")
	v.alertOn(mon.AlertOn, p+".alert_on")
	if mon.WebhookURL != "" {
		if msg, shown := webhookProblem(mon.WebhookURL); msg != "" {
			v.add(p+".webhook_url", "%s; got %q", msg, shown)
		}
	}
	v.alerts(mon, p)
}

// windowClose checks when a live window closes before it is full.
func (v *validator) windowClose(mon *Monitor, p string) {
	v.nonNegative(p+".max_age", mon.MaxAge, "closes windows only when full")
	mw := p + ".min_window"
	switch {
	case mon.Window >= 2:
		if mon.MinWindow < 2 || mon.MinWindow > mon.Window {
			v.add(mw, "must be >= 2 and <= monitor.window (%d), got %d", mon.Window, mon.MinWindow)
		}
	case mon.MinWindow < 2 && v.idx.has(mw):
		// The window is reported already; its default for min_window
		// would only repeat that problem, an explicit value would not.
		v.add(mw, "must be >= 2, got %d", mon.MinWindow)
	}
}

// reference checks that exactly one reference source is set. There is no
// cycle to detect: a model has one reference, shared by all its versions,
// so reference.version names the version the others are compared with and
// no version has a reference of its own that could point back.
func (v *validator) reference(m *Model, rp string) {
	ref := m.Monitor.Reference
	warmupSet := ref.Warmup != 0 || v.idx.has(rp+".warmup")
	sources := 0
	for _, set := range []bool{warmupSet, ref.File != "", ref.Version != ""} {
		if set {
			sources++
		}
	}
	switch {
	case sources > 1:
		v.add(rp, "set only one of warmup, file, version")
	case sources == 0:
		v.add(rp, "set one of warmup, file, version")
	}
	if warmupSet && ref.Warmup < 1 {
		v.add(rp+".warmup", "must be >= 1, got %d", ref.Warmup)
	}
	if ref.Version != "" && !m.hasVersion(ref.Version) {
		v.add(rp+".version", "must name a version of this model (%s); got %q", m.versionList(), ref.Version)
	}
}

// features checks the names of row-shaped inputs' columns.
func (v *validator) features(mon *Monitor, p string) {
	if len(mon.Features) > MaxMonitorFeatures {
		v.add(p, "at most %d features are monitored per version; got %d (monitor fewer, or split the model)", MaxMonitorFeatures, len(mon.Features))
	}
	seen := map[string]int{}
	for i, f := range mon.Features {
		fp := item(p, i)
		if f == "" {
			v.add(fp, "feature name must not be empty")
			continue
		}
		if j, dup := seen[f]; dup {
			v.add(fp, "duplicate feature %q (also features[%d])", f, j)
			continue
		}
		seen[f] = i
	}
}

// rawPaths checks paths and prediction_path, which only protocol raw
// takes, and that raw names its features with them. An unknown protocol
// is reported already and judged no further here.
func (v *validator) rawPaths(m *Model, p string) {
	mon := &m.Monitor
	if !m.Protocol.Known() {
		return
	}
	if m.Protocol != ProtocolRaw {
		if len(mon.Paths) > 0 {
			v.add(p+".paths", "is only for protocol raw; protocol %s decodes its features itself (name them with monitor.features)", m.Protocol)
		}
		if mon.PredictionPath != "" {
			v.add(p+".prediction_path", "is only for protocol raw; protocol %s decodes its predictions itself", m.Protocol)
		}
		return
	}
	if len(mon.Features) > 0 {
		v.add(p+".features", "use monitor.paths for protocol raw: it names each feature by a dot path into the request JSON")
	}
	if len(mon.Paths) > MaxMonitorFeatures {
		v.add(p+".paths", "at most %d features are monitored per version; got %d", MaxMonitorFeatures, len(mon.Paths))
	}
	names := make([]string, 0, len(mon.Paths))
	for name := range mon.Paths {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		q := p + ".paths." + name
		if name == "" {
			v.add(q, "feature name must not be empty")
		}
		if msg := dotPathProblem(mon.Paths[name]); msg != "" {
			v.add(q, "%s", msg)
		}
	}
	if mon.PredictionPath != "" {
		if msg := dotPathProblem(mon.PredictionPath); msg != "" {
			v.add(p+".prediction_path", "%s", msg)
		}
	}
}

// dotPathProblem says what is wrong with a dot path into JSON
// ("inputs.0.x"), or "" when nothing is.
func dotPathProblem(path string) string {
	if path == "" {
		return `must be a dot path into the JSON such as "inputs.0.x", got ""`
	}
	if slices.Contains(strings.Split(path, "."), "") {
		return "must be a dot path such as \"inputs.0.x\", with no empty segment; got " + strconv.Quote(path)
	}
	return ""
}

// thresholds checks the per-method alert levels.
func (v *validator) thresholds(th *Thresholds, p string) {
	pLevel := func(key string, f float64) {
		if !(f > 0 && f < 1) {
			v.add(p+"."+key, "must be > 0 and < 1 (a p-value level), got %s", fmtFloat(f))
		}
	}
	pLevel("ks", th.KS)
	pLevel("chi2", th.Chi2)
	statLevel := func(key string, f float64) {
		if !(f > 0) || math.IsInf(f, 1) {
			v.add(p+"."+key, "must be a finite number > 0, got %s", fmtFloat(f))
		}
	}
	statLevel("psi", th.PSI)
	statLevel("wasserstein", th.Wasserstein)
	if !(th.JS > 0 && th.JS <= 1) {
		v.add(p+".js", "must be > 0 and <= 1 (the base-2 Jensen-Shannon distance is at most 1), got %s", fmtFloat(th.JS))
	}
}

// alertOn checks the methods that raise alerts.
func (v *validator) alertOn(methods []string, p string) {
	known := strings.Join(Methods(), ", ")
	if len(methods) == 0 {
		v.add(p, "must list at least one of %s", known)
		return
	}
	seen := map[string]int{}
	for i, method := range methods {
		q := item(p, i)
		if !slices.Contains(Methods(), method) {
			v.add(q, "must be one of %s; got %q", known, method)
			continue
		}
		if j, dup := seen[method]; dup {
			v.add(q, "duplicate method %q (also alert_on[%d])", method, j)
			continue
		}
		seen[method] = i
	}
}

// webhookProblem says what is wrong with an alert webhook URL, or "" when
// nothing is; shown is the URL to quote, its password redacted.
func webhookProblem(raw string) (msg, shown string) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return "must be an absolute URL such as http://alertmanager:9093/api/v2/alerts", raw
	}
	shown = u.Redacted()
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "scheme must be http or https", shown
	case u.Hostname() == "":
		return "must name a host", shown
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return "port must be a number from 1 to 65535", shown
		}
	}
	return "", shown
}
