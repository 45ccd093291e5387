package configs

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExposure(t *testing.T) {
	const models = `
models:
  - name: iris
    match: {path_prefix: /}
    versions:
      - {name: v1, endpoints: ["http://127.0.0.1:8501"]}
`
	tests := []struct {
		name, head string
		path       string // "" means valid
		line       int
	}{
		{"admin on loopback", "admin: {listen: \"127.0.0.1:9901\"}", "", 0},
		{"admin on localhost", "admin: {listen: \"localhost:9901\"}", "", 0},
		{"admin on ipv6 loopback", "admin: {listen: \"[::1]:9901\"}", "", 0},
		{"admin on every interface", "admin:\n  listen: \"0.0.0.0:9901\"", "admin.listen", 2},
		{"admin on empty host", "admin:\n  listen: \":9901\"", "admin.listen", 2},
		{"admin on a pod ip", "admin:\n  listen: \"10.1.2.3:9901\"", "admin.listen", 2},
		{"admin exposed with a token", "admin: {listen: \"0.0.0.0:9901\", token_file: /run/secrets/vane}", "", 0},
		{"admin exposed on purpose", "admin: {listen: \"0.0.0.0:9901\", insecure: true}", "", 0},
		{"metrics listener", "metrics: {listen: \"0.0.0.0:9090\"}", "", 0},
		{"metrics on the data port", "listen: \"0.0.0.0:8080\"\nmetrics:\n  listen: \"127.0.0.1:8080\"", "metrics.listen", 3},
		{"metrics on the admin port", "metrics:\n  listen: \"0.0.0.0:9901\"", "metrics.listen", 2},
		{"metrics not an address", "metrics:\n  listen: \"9090\"", "metrics.listen", 2},
		{"metrics unknown key", "metrics:\n  port: 9090", "metrics.port", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.head + "\n" + models))
			if tt.path == "" {
				assert.NoError(t, err)
				return
			}
			var probs Errors
			require.True(t, errors.As(err, &probs), "want problems, got %v", err)
			require.Len(t, probs, 1, "problems: %v", probs)
			assert.Equal(t, tt.path, probs[0].Path)
			assert.Equal(t, tt.line, probs[0].Line)
		})
	}
}
