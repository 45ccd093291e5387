package xds

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/vaneproxy/vane/configs"
)

// The Kubernetes examples hold files that load.
func TestKubernetesExamplesLoad(t *testing.T) {
	raw, err := os.ReadFile("../examples/kubernetes/control-plane/configmap.yaml")
	require.NoError(t, err)
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &cm))
	cp, err := configs.ParseControlPlane([]byte(cm.Data["control-plane.yaml"]))
	require.NoError(t, err)
	_, err = buildGroups(cp)
	require.NoError(t, err)

	sidecar, err := os.ReadFile("../examples/kubernetes/control-plane/sidecar-xds.yaml")
	require.NoError(t, err)
	cfg, err := configs.Parse(sidecar)
	require.NoError(t, err)
	require.True(t, cfg.XDS.Enabled())
}
