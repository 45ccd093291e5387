package configs

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAlertKeys(t *testing.T) {
	t.Setenv("VANE_TEST_POD", "iris-0")
	base := `
models:
  - name: iris
    match: {path_prefix: /}
    versions:
      - {name: v1, endpoints: ["http://127.0.0.1:8501"]}
    monitor:
      webhook_url: http://127.0.0.1:9093/api/v2/alerts
`
	tests := []struct {
		name, extra, path string
	}{
		{"labels with env", "      alert_labels: {pod: \"${VANE_TEST_POD}\", team: ml}\n", ""},
		{"severity", "      alert_severity: critical\n", ""},
		{"generator url", "      generator_url: \"http://vane.example/${VANE_TEST_POD}\"\n", ""},
		{"unset env", "      alert_labels: {pod: \"${VANE_TEST_NOPE}\"}\n", "models[0].monitor.alert_labels.pod"},
		{"reserved label", "      alert_labels: {model: x}\n", "models[0].monitor.alert_labels.model"},
		{"bad label name", "      alert_labels: {\"a-b\": x}\n", "models[0].monitor.alert_labels.a-b"},
		{"bad severity", "      alert_severity: \"Page Me\"\n", "models[0].monitor.alert_severity"},
		{"bad generator url", "      generator_url: \"ftp://x\"\n", "models[0].monitor.generator_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(base + tt.extra))
			if tt.path == "" {
				assert.NoError(t, err)
				return
			}
			var probs Errors
			require.True(t, errors.As(err, &probs), "want problems, got %v", err)
			require.Len(t, probs, 1, "%v", probs)
			assert.Equal(t, tt.path, probs[0].Path)
			assert.Positive(t, probs[0].Line, "the line is known")
		})
	}
}
