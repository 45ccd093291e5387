package configs

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const cpFile = `listen: 127.0.0.1:18000
groups:
  - name: prod
    models:
      - name: iris
        match: {path_prefix: /v1/models/iris}
        protocol: kserve-v1
        versions:
          - {name: v1, weight: 90, endpoints: ["http://127.0.0.1:8501"]}
          - {name: v2, weight: 10, endpoints: ["http://127.0.0.1:8502"]}
`

func TestParseControlPlaneFillsServeDefaults(t *testing.T) {
	cp, err := ParseControlPlane([]byte(cpFile))
	require.NoError(t, err)
	assert.Equal(t, DefaultControlPlaneAdmin, cp.Admin.Listen)
	m := cp.Group("prod").Models[0]
	assert.Equal(t, DefaultTimeout, m.Timeout)
	assert.Equal(t, "/v1/models/iris", m.Health.Path)
	assert.Equal(t, DefaultWindow, m.Monitor.Window)
	assert.Nil(t, cp.Group("staging"))
}

func TestParseControlPlaneNamesGroupPathAndLine(t *testing.T) {
	bad := `groups:
  - name: prod
    models:
      - name: iris
        match: {path_prefix: /iris}
        versions:
          - {name: v1, weight: -5, endpoints: ["http://127.0.0.1:8501"]}
  - name: prod
    models: []
    bogus: 1
`
	_, err := ParseControlPlane([]byte(bad))
	var probs Errors
	require.True(t, errors.As(err, &probs), "got %v", err)
	got := probs.Error()
	assert.Contains(t, got, "groups[0].models[0].versions[0].weight (line 7): must be >= 0, got -5")
	assert.Contains(t, got, "groups[1].name (line 8): duplicate group name")
	assert.Contains(t, got, "groups[1].bogus (line 10): unknown key")
	assert.Contains(t, got, "groups[1].models (line 9): at least one model is required")
}

func TestXDSSectionRules(t *testing.T) {
	base := "models: []\nxds:\n  server: 127.0.0.1:18000,127.0.0.1:18001\n  cluster: prod\n"
	cfg, err := Parse([]byte(base))
	require.NoError(t, err, "xds lets models be empty")
	assert.Equal(t, []string{"127.0.0.1:18000", "127.0.0.1:18001"}, cfg.XDS.Servers())

	_, err = Parse([]byte("xds:\n  server: nope\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "xds.server (line 2): must be host:port")
	assert.Contains(t, err.Error(), "xds.cluster (line 1): is required")

	_, err = Parse([]byte("xds:\n  server: 127.0.0.1:1\n  cluster: a\n  tls: {ca_file: ca.pem}\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "xds.tls.cert_file (line 4): is required")
}
