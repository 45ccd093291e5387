package monitor

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// TestWebhookAlertShape: alert_labels (with ${ENV} expanded), the
// severity and generatorURL reach Alertmanager; vane's own labels stay.
func TestWebhookAlertShape(t *testing.T) {
	t.Setenv("VANE_TEST_POD", "iris-7d9f")
	t.Setenv("VANE_TEST_NS", "models")
	sink := &alertSink{}
	f, url := newWebhookFixture(t, sink)
	mon := configs.Monitor{Window: 100, Reference: configs.Reference{Warmup: 100}, Features: []string{"x"},
		Detector: configs.DetectorWindow, Consecutive: 1, WebhookURL: url,
		AlertLabels:   map[string]string{"pod": "${VANE_TEST_POD}", "namespace": "$VANE_TEST_NS", "team": "ml"},
		AlertSeverity: "critical", GeneratorURL: "http://iris.${VANE_TEST_NS}.svc:9901/"}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	f.run(t)
	rng := rand.New(rand.NewPCG(12, 12))
	f.feedRows("m", "v1", normals(rng, 100, 1))
	f.feedRows("m", "v1", normals(rng, 100, 1, 3))
	require.Eventually(t, func() bool { return len(sink.posts()) >= 1 }, 5*time.Second, 5*time.Millisecond)
	var alerts []struct {
		Labels       map[string]string `json:"labels"`
		GeneratorURL string            `json:"generatorURL"`
	}
	require.NoError(t, json.Unmarshal(sink.posts()[0], &alerts))
	require.NotEmpty(t, alerts)
	a := alerts[0]
	assert.Equal(t, map[string]string{"alertname": AlertName, "model": "m", "version": "v1", "feature": "x",
		"severity": "critical", "pod": "iris-7d9f", "namespace": "models", "team": "ml"}, a.Labels)
	assert.Equal(t, "http://iris.models.svc:9901/", a.GeneratorURL)
}

func TestAlertShapeDefaults(t *testing.T) {
	a := alertOf(alertEvent{model: "m", version: "v1", feature: "x", firing: true})
	assert.Equal(t, "warning", a.Labels["severity"])
	assert.Empty(t, a.GeneratorURL)
	a = alertOf(alertEvent{model: "m", version: "v1", feature: "x", firing: true, shape: newAlertShape(&config(model("m", configs.Monitor{}, "v1")).Models[0].Monitor)})
	assert.Equal(t, "warning", a.Labels["severity"])
	assert.Len(t, a.Labels, 5)
}
