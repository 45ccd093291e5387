package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vaneproxy/vane/judge"
	"github.com/vaneproxy/vane/proxy"
)

// label is one ground-truth item of POST /feedback: the species the
// generator drew the row from (0 setosa, 1 versicolor, 2 virginica, the
// toy model's classes).
type label struct {
	RequestID string `json:"request_id"`
	Label     int    `json:"label"`
}

// maxPendingLabels bounds the labels waiting to be posted.
const maxPendingLabels = 20_000

// compareEvery is how many summary ticks pass between /compare lines.
const compareEvery = 10

// feedback posts the labels of answered requests to the admin /feedback
// once a second, as a labelling pipeline would, until ctx is done.
func (g *generator) feedback(ctx context.Context, admin string) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.mu.Lock()
		batch := g.labels
		g.labels = nil
		g.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		body, err := json.Marshal(batch)
		if err != nil {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, admin+"/feedback", bytes.NewReader(body))
		if err != nil {
			continue
		}
		if resp, err := g.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}
}

// compareWatch renders GET /compare as one line.
type compareWatch struct {
	url    string
	client *http.Client
}

func newCompareWatch(admin, model string) *compareWatch {
	return &compareWatch{url: admin + "/compare?model=" + model, client: &http.Client{Timeout: 2 * time.Second}}
}

// line is, per version, accuracy against the ground truth with its
// interval, the shadow's agreement, and each test's verdict against the
// baseline; "" when /compare cannot be read.
func (c *compareWatch) line(ctx context.Context) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return ""
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var rep proxy.CompareReport
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&rep) != nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "compare (baseline %s, alpha %g):", rep.Baseline, rep.Alpha)
	for _, v := range rep.Versions {
		fmt.Fprintf(&b, " | %s", v.Version)
		if v.Shadow {
			b.WriteString(" (shadow)")
		}
		if a := v.Accuracy; a != nil && a.Cumulative.Labelled > 0 {
			fmt.Fprintf(&b, " accuracy %.3f [%.3f, %.3f] n=%d", a.Cumulative.Accuracy,
				a.Cumulative.AccuracyLow, a.Cumulative.AccuracyHigh, a.Cumulative.Labelled)
		}
		if s := v.ShadowAgreement; s != nil && s.Cumulative.Rows > 0 {
			fmt.Fprintf(&b, " agreement %.3f [%.3f, %.3f] n=%d", s.Cumulative.Agreement,
				s.Cumulative.AgreementLow, s.Cumulative.AgreementHigh, s.Cumulative.Rows)
		}
		for _, t := range v.Tests {
			if t.Verdict != judge.NotEnough || t.Metric == "accuracy" {
				fmt.Fprintf(&b, " %s: %s", strings.ReplaceAll(t.Metric, "_", " "), t.Verdict)
			}
		}
	}
	return b.String()
}
