package monitor

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// alertSink is an Alertmanager stand-in: it records every POST body and
// answers with the queued statuses, then 200.
type alertSink struct {
	mu       sync.Mutex // guards bodies and statuses
	bodies   [][]byte
	statuses []int
}

func (s *alertSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.bodies = append(s.bodies, body)
	code := http.StatusOK
	if len(s.statuses) > 0 {
		code, s.statuses = s.statuses[0], s.statuses[1:]
	}
	w.WriteHeader(code)
}

func (s *alertSink) posts() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}

// wireAlert is what Alertmanager's POST /api/v2/alerts reads.
type wireAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       *time.Time        `json:"endsAt"`
	GeneratorURL *string           `json:"generatorURL"`
}

func decodeAlerts(t *testing.T, body []byte) []wireAlert {
	t.Helper()
	var alerts []wireAlert
	require.NoError(t, json.Unmarshal(body, &alerts))
	return alerts
}

func newWebhookFixture(t *testing.T, sink *alertSink) (*fixture, string) {
	t.Helper()
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	f := newFixture(t, Options{HTTPClient: client})
	f.m.hook.backoff = 5 * time.Millisecond
	return f, srv.URL + "/api/v2/alerts"
}

func TestWebhookRaiseAndResolve(t *testing.T) {
	sink := &alertSink{statuses: []int{http.StatusInternalServerError}}
	f, url := newWebhookFixture(t, sink)
	mon := configs.Monitor{Window: 100, Reference: configs.Reference{Warmup: 100}, Features: []string{"x"},
		Consecutive: 1, WebhookURL: url, Detector: configs.DetectorWindow}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	f.run(t)

	rng := rand.New(rand.NewPCG(9, 9))
	f.feedRows("m", "v1", normals(rng, 100, 1))
	raisedAt := f.clock.Now()
	f.feedRows("m", "v1", normals(rng, 100, 1, 3)) // raise
	require.Eventually(t, func() bool { return len(sink.posts()) == 2 }, 5*time.Second, 5*time.Millisecond,
		"the first try got 500 and is retried")
	f.clock.Advance(time.Hour)
	f.feedRows("m", "v1", normals(rng, 100, 1)) // clear
	require.Eventually(t, func() bool { return len(sink.posts()) == 3 }, 5*time.Second, 5*time.Millisecond)

	posts := sink.posts()
	assert.Equal(t, posts[0], posts[1], "the retry sends the same alert")
	raise := decodeAlerts(t, posts[1])
	require.Len(t, raise, 1)
	assert.Equal(t, map[string]string{"alertname": "VaneDriftDetected", "model": "m", "version": "v1",
		"feature": "x", "severity": "warning"}, raise[0].Labels)
	assert.Contains(t, raise[0].Annotations["summary"], "x")
	assert.Contains(t, raise[0].Annotations["description"], "ks=")
	assert.True(t, raise[0].StartsAt.Equal(raisedAt))
	assert.Nil(t, raise[0].EndsAt, "firing")

	resolve := decodeAlerts(t, posts[2])
	require.Len(t, resolve, 1)
	assert.Equal(t, raise[0].Labels, resolve[0].Labels)
	assert.True(t, resolve[0].StartsAt.Equal(raisedAt))
	require.NotNil(t, resolve[0].EndsAt, "resolved")
	assert.True(t, resolve[0].EndsAt.Equal(f.clock.Now()))

	// The sender counts a delivery after the sink has answered it.
	require.Eventually(t, func() bool {
		sent, _ := f.value(t, "vane_monitor_webhook_sent_total", nil)
		return sent == 2
	}, 5*time.Second, 5*time.Millisecond, "two deliveries counted")
	failed, _ := f.value(t, "vane_monitor_webhook_errors_total", map[string]string{"reason": "send"})
	assert.Equal(t, 0.0, failed)
}

func TestWebhookResendsWhileFiring(t *testing.T) {
	sink := &alertSink{}
	f, url := newWebhookFixture(t, sink)
	mon := configs.Monitor{Window: 100, Reference: configs.Reference{Warmup: 100}, Features: []string{"x"},
		Consecutive: 2, WebhookURL: url, Detector: configs.DetectorWindow}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	f.run(t)
	rng := rand.New(rand.NewPCG(10, 10))
	f.feedRows("m", "v1", normals(rng, 100, 1))
	for _, shift := range []float64{3, 3, 0, 0} { // raise on 2nd, still firing on 3rd, clear on 4th
		f.feedRows("m", "v1", normals(rng, 100, 1, shift))
	}
	require.Eventually(t, func() bool { return len(sink.posts()) == 3 }, 5*time.Second, 5*time.Millisecond)
	posts := sink.posts()
	first, again, end := decodeAlerts(t, posts[0])[0], decodeAlerts(t, posts[1])[0], decodeAlerts(t, posts[2])[0]
	assert.Nil(t, first.EndsAt)
	assert.Nil(t, again.EndsAt)
	assert.True(t, first.StartsAt.Equal(again.StartsAt), "a resend keeps startsAt")
	assert.NotNil(t, end.EndsAt)
}

func TestWebhookGivesUpAfterThreeAttempts(t *testing.T) {
	sink := &alertSink{statuses: []int{500, 502, 503, 500, 500}}
	f, url := newWebhookFixture(t, sink)
	require.NoError(t, f.m.Configure(config(model("m", configs.Monitor{Window: 10}, "v1"))))
	f.run(t)
	f.m.hook.enqueue(alertEvent{model: "m", version: "v1", feature: "x", firing: true,
		startsAt: f.clock.Now(), url: url})
	require.Eventually(t, func() bool {
		got, _ := f.value(t, "vane_monitor_webhook_errors_total", map[string]string{"reason": "send"})
		return got == 1
	}, 5*time.Second, 5*time.Millisecond)
	assert.Len(t, sink.posts(), 3)

	// A 4xx is not retried.
	sink.mu.Lock()
	sink.bodies, sink.statuses = nil, []int{http.StatusBadRequest}
	sink.mu.Unlock()
	f.m.hook.enqueue(alertEvent{model: "m", version: "v1", feature: "x", firing: true, url: url})
	require.Eventually(t, func() bool {
		got, _ := f.value(t, "vane_monitor_webhook_errors_total", map[string]string{"reason": "send"})
		return got == 2
	}, 5*time.Second, 5*time.Millisecond)
	assert.Len(t, sink.posts(), 1)
	assert.Contains(t, f.logText(), "drift webhook failed")
}

func TestWebhookQueueBounded(t *testing.T) {
	f := newFixture(t, Options{}) // no Run: nothing drains the queue
	start := time.Now()
	for range webhookQueueSize + 44 {
		f.m.hook.enqueue(alertEvent{model: "m", version: "v1", feature: "x", url: "http://127.0.0.1:1"})
	}
	assert.Less(t, time.Since(start), time.Second, "enqueue never blocks")
	dropped, ok := f.value(t, "vane_monitor_webhook_errors_total", map[string]string{"reason": "queue_full"})
	require.True(t, ok)
	assert.Equal(t, 44.0, dropped)
}
