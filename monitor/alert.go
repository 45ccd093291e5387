package monitor

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// alertEvent is a change of one feature's alert (or, with resend, a
// reminder that it still holds), for the log and the webhook.
type alertEvent struct {
	model, version, feature string
	kind                    kind
	firing                  bool      // raised (true) or cleared
	resend                  bool      // still raised: only the webhook hears it again
	startsAt                time.Time // when the alert was raised
	endsAt                  time.Time // when it was cleared; zero while firing
	window                  int       // the closed window that decided (1-based)
	summary                 string    // the methods' statistics, never payload contents
	url                     string    // webhook; "" for none

	// shape is the config's labels, severity and generatorURL (webhook.go);
	// nil means the default labels and no generatorURL.
	shape *alertShape
}

// judge applies the hysteresis to one feature's window verdict: the alert
// is raised after `consecutive` drifted windows in a row and cleared after
// as many clean ones. While raised, every window close re-sends it to the
// webhook (as Prometheus re-sends firing alerts), so that Alertmanager's
// resolve_timeout does not end it.
func (v *versionState) judge(f *feature, drifted bool, now time.Time, ev []alertEvent) []alertEvent {
	if drifted {
		f.driftRun++
		f.cleanRun = 0
	} else {
		f.cleanRun++
		f.driftRun = 0
	}
	raise := !f.alert && f.driftRun >= v.set.consecutive
	clear := f.alert && f.cleanRun >= v.set.consecutive
	return v.transition(f, raise, clear, now, ev)
}

// judgeSeq is judge for the sequential detector: the alert is raised when
// the feature's largest CUSUM passes its threshold and cleared when all
// its sums are back at 0 — the state the calibration's run lengths start
// from, so that a cleared alert is not re-raised more easily than a
// first one.
func (v *versionState) judgeSeq(f *feature, now time.Time, ev []alertEvent) []alertEvent {
	raise := !f.alert && f.seqScore > f.seqH
	clear := f.alert && f.seqScore == 0
	return v.transition(f, raise, clear, now, ev)
}

// transition raises or clears the feature's alert, or re-sends a raised
// one, and records the event.
func (v *versionState) transition(f *feature, raise, clear bool, now time.Time, ev []alertEvent) []alertEvent {
	e := alertEvent{model: v.model, version: v.version, feature: f.name, kind: f.kind,
		window: v.judging, url: v.set.webhookURL, shape: v.set.alertShape}
	switch {
	case raise:
		f.alert, f.since = true, now
		e.firing, e.startsAt = true, now
	case clear:
		f.alert = false
		e.startsAt, e.endsAt = f.since, now
		f.since = time.Time{}
	case f.alert && e.url != "":
		e.firing, e.resend, e.startsAt = true, true, f.since
	default:
		v.setDetected(f)
		return ev
	}
	v.setDetected(f)
	e.summary = summarize(f.tests)
	if v.set.detector == detectorCUSUM {
		e.summary = f.seqSummary() + "; " + e.summary
	}
	return append(ev, e)
}

func (v *versionState) setDetected(f *feature) {
	x := 0.0
	if f.alert {
		x = 1
	}
	v.mm.detected.WithLabelValues(v.model, v.version, f.name).Set(x)
}

// resolveAll clears every raised alert of a state that Configure retires
// (its version left the config or its state was reset).
func (v *versionState) resolveAll(now time.Time, ev []alertEvent) []alertEvent {
	for _, f := range v.features {
		if !f.alert {
			continue
		}
		ev = append(ev, alertEvent{model: v.model, version: v.version, feature: f.name, kind: f.kind,
			startsAt: f.since, endsAt: now, window: v.windowsClosed, url: v.set.webhookURL, shape: v.set.alertShape,
			summary: "monitor state reset by a config change"})
		f.alert = false
	}
	return ev
}

// summarize renders the statistics of a window's tests: what the log line
// and the webhook's description carry.
func summarize(tests []testResult) string {
	var b strings.Builder
	for i, t := range tests {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s=%.4g", t.method, t.stat)
		if t.method.hasPValue() {
			fmt.Fprintf(&b, " p=%.3g p_adjusted=%.3g", t.p, t.pAdj)
		}
		fmt.Fprintf(&b, " threshold=%g", t.threshold)
		if t.drifted {
			b.WriteString(" drifted")
		}
	}
	return b.String()
}

// emit logs each alert change and hands it to the webhook. It runs outside
// every version lock.
func (m *Monitor) emit(ev []alertEvent) {
	for i := range ev {
		e := &ev[i]
		attrs := []any{"model", e.model, "version", e.version, "feature", e.feature,
			"kind", e.kind.String(), "window", e.window, "tests", e.summary}
		switch {
		case e.resend:
		case e.firing:
			m.log.Warn("drift alert raised", attrs...)
		default:
			m.log.Info("drift alert cleared", append(attrs, slog.Time("since", e.startsAt))...)
		}
		if e.url != "" {
			m.hook.enqueue(*e)
		}
	}
}
