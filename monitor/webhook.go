package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/vaneproxy/vane/configs"
)

// Webhook delivery bounds.
const (
	webhookQueueSize = 256                    // alerts waiting for delivery; more are dropped and counted
	webhookAttempts  = 3                      // tries per alert, the first included
	webhookBackoff   = 500 * time.Millisecond // before the second try; doubled before each next one
	webhookTimeout   = 10 * time.Second       // per try, for the default client
)

// AlertName is the alertname label of the webhook's alerts.
const AlertName = "VaneDriftDetected"

// webhook delivers alert changes from its own goroutine, off every
// request and worker path, in Alertmanager's POST /api/v2/alerts shape.
type webhook struct {
	client  *http.Client
	log     *slog.Logger
	met     *metrics
	queue   chan alertEvent
	backoff time.Duration
}

func newWebhook(client *http.Client, log *slog.Logger, met *metrics) *webhook {
	if client == nil {
		client = &http.Client{Timeout: webhookTimeout}
	}
	return &webhook{client: client, log: log, met: met,
		queue: make(chan alertEvent, webhookQueueSize), backoff: webhookBackoff}
}

// enqueue queues e without blocking; a full queue drops it and counts.
func (w *webhook) enqueue(e alertEvent) {
	select {
	case w.queue <- e:
	default:
		w.met.webhookErrors.WithLabelValues("queue_full").Inc()
		w.log.Warn("drift webhook queue full, alert dropped", "model", e.model, "version", e.version, "feature", e.feature)
	}
}

// run delivers queued alerts until ctx is done; alerts still queued then
// are not sent.
func (w *webhook) run(ctx context.Context) {
	defer w.client.CloseIdleConnections()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-w.queue:
			w.deliver(ctx, e)
		}
	}
}

// amAlert is one alert as Alertmanager's API v2 takes it.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       *time.Time        `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// alertShape is what the config adds to a model's alerts: labels (their
// ${ENV} expanded once, when the config is applied), the severity and the
// generatorURL.
type alertShape struct {
	labels       map[string]string
	severity     string
	generatorURL string
}

// newAlertShape resolves monitor.alert_labels, alert_severity and
// generator_url. Validation has checked that every variable is set; one
// unset since expands to "".
func newAlertShape(mon *configs.Monitor) *alertShape {
	s := &alertShape{severity: mon.AlertSeverity}
	if len(mon.AlertLabels) > 0 {
		s.labels = make(map[string]string, len(mon.AlertLabels))
		for k, v := range mon.AlertLabels {
			s.labels[k], _ = configs.ExpandEnv(v)
		}
	}
	s.generatorURL, _ = configs.ExpandEnv(mon.GeneratorURL)
	return s
}

func alertOf(e alertEvent) amAlert {
	shape := e.shape
	if shape == nil {
		shape = &alertShape{severity: configs.DefaultAlertSeverity}
	}
	labels := make(map[string]string, len(shape.labels)+5)
	for k, v := range shape.labels {
		labels[k] = v
	}
	for k, v := range map[string]string{"alertname": AlertName, "model": e.model, "version": e.version,
		"feature": e.feature, "severity": shape.severity} {
		labels[k] = v // vane's own labels win (validation rejects overriding them)
	}
	a := amAlert{
		GeneratorURL: shape.generatorURL,
		Labels:       labels,
		Annotations: map[string]string{
			"summary": fmt.Sprintf("Drift in %s of model %s version %s", e.feature, e.model, e.version),
			"description": fmt.Sprintf("%s feature %q, window %d against the reference: %s",
				e.kind, e.feature, e.window, e.summary),
		},
		StartsAt: e.startsAt.UTC(),
	}
	if !e.firing {
		a.Annotations["summary"] = fmt.Sprintf("Drift cleared in %s of model %s version %s", e.feature, e.model, e.version)
		end := e.endsAt.UTC()
		a.EndsAt = &end
	}
	return a
}

// deliver posts one alert, trying up to webhookAttempts times with
// exponential backoff on transport errors, 429 and 5xx answers.
func (w *webhook) deliver(ctx context.Context, e alertEvent) {
	body, err := json.Marshal([]amAlert{alertOf(e)})
	if err != nil {
		w.met.webhookErrors.WithLabelValues("send").Inc()
		return
	}
	wait := w.backoff
	for attempt := 1; ; attempt++ {
		retry, err := w.post(ctx, e.url, body)
		if err == nil {
			w.met.webhookSent.Inc()
			return
		}
		if !retry || attempt >= webhookAttempts || ctx.Err() != nil {
			w.met.webhookErrors.WithLabelValues("send").Inc()
			w.log.Warn("drift webhook failed", "url", redact(e.url), "attempts", attempt,
				"model", e.model, "version", e.version, "feature", e.feature, "err", err)
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			w.met.webhookErrors.WithLabelValues("send").Inc()
			return
		case <-t.C:
		}
		wait *= 2
	}
}

// post sends body once; retry says whether another try may succeed.
func (w *webhook) post(ctx context.Context, u string, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("webhook answered %s", resp.Status)
	}
	return false, fmt.Errorf("webhook answered %s", resp.Status)
}

// redact hides a URL's password for the log.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}
