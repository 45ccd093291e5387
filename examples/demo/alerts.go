package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/vaneproxy/vane/monitor"
)

// alertWatch reads vane's GET /drift and reports alerts as they are raised
// and cleared, the way an operator watching the report would see them.
type alertWatch struct {
	url    string
	client *http.Client
	warmup int             // rows the reference learns, from the demo config
	raised map[string]bool // "version/feature" currently alerting
	status string          // warm-up and window progress for the summary
}

func newAlertWatch(admin string, warmup int) *alertWatch {
	return &alertWatch{url: admin + "/drift", client: &http.Client{Timeout: 2 * time.Second}, warmup: warmup, raised: map[string]bool{}}
}

// changes returns one line per alert raised or cleared since the last call.
func (a *alertWatch) changes(ctx context.Context) []string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url, nil)
	if err != nil {
		return nil
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var r monitor.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil
	}
	var lines, progress []string
	now := map[string]bool{}
	for _, m := range r.Models {
		for _, v := range m.Versions {
			if !v.ReferenceReady {
				progress = append(progress, fmt.Sprintf("%s reference %d/%d", v.Version, v.ReferenceSize, a.warmup))
			} else {
				progress = append(progress, fmt.Sprintf("%s windows %d", v.Version, v.WindowsClosed))
			}
			for _, f := range v.Features {
				key := v.Version + "/" + f.Feature
				if !f.Drifted {
					if a.raised[key] {
						lines = append(lines, fmt.Sprintf("--- drift cleared: %s %s %s", m.Model, v.Version, f.Feature))
					}
					continue
				}
				now[key] = true
				if !a.raised[key] {
					lines = append(lines, fmt.Sprintf("--- DRIFT ALERT: %s %s %s (%s)", m.Model, v.Version, f.Feature, testsLine(f)))
				}
			}
		}
	}
	a.raised = now
	a.status = strings.Join(progress, ", ")
	sort.Strings(lines)
	return lines
}

func testsLine(f monitor.FeatureReport) string {
	var parts []string
	for _, t := range f.Tests {
		if t.PValue != nil {
			parts = append(parts, fmt.Sprintf("%s=%.3f p=%.2g", t.Method, t.Statistic, *t.PValue))
		} else {
			parts = append(parts, fmt.Sprintf("%s=%.3f", t.Method, t.Statistic))
		}
	}
	return strings.Join(parts, " ")
}

// summary is the drift part of the one-line summary.
func (a *alertWatch) summary() string {
	names := make([]string, 0, len(a.raised))
	for k := range a.raised {
		names = append(names, k)
	}
	sort.Strings(names)
	alerting := "none"
	if len(names) > 0 {
		alerting = strings.Join(names, ",")
	}
	return fmt.Sprintf("  drift: %s [%s]", alerting, a.status)
}
