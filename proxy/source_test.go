package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// A config from elsewhere than the file goes through the reload path,
// and /status shows where it came from.
func TestApplyConfigAndSource(t *testing.T) {
	backend := backend(t, "v1").URL
	text := "models:\n  - name: iris\n    match: {path_prefix: /}\n    health: {interval: 50ms, timeout: 40ms}\n" +
		"    versions: [{name: v1, weight: 1, endpoints: [\"" + backend + "\"]}]\n"
	v := startVane(t, text)
	assert.Equal(t, "file", v.srv.Status().Source.(map[string]string)["source"])

	changed := strings.Replace(text, "weight: 1,", "weight: 7,", 1)
	cfg, err := configs.Parse([]byte(changed))
	require.NoError(t, err)
	hash, err := v.srv.ApplyConfig(cfg, []byte(changed))
	require.NoError(t, err)
	assert.Equal(t, configs.Hash([]byte(changed)), hash)
	st := v.srv.Status()
	assert.Equal(t, 7.0, st.Models[0].Versions[0].Weight)
	assert.True(t, st.Models[0].Versions[0].Healthy, "health state is kept across the apply")

	v.srv.SetSource(func() any { return map[string]any{"source": "xds", "server": "cp:18000"} })
	resp, err := http.Get(v.admin + "/status")
	require.NoError(t, err)
	var body struct {
		Source map[string]any `json:"source"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	_ = resp.Body.Close()
	assert.Equal(t, "xds", body.Source["source"])

	// With xds and no model yet, the sidecar is not ready.
	empty, err := configs.Parse([]byte("xds: {server: 127.0.0.1:1, cluster: prod}\n"))
	require.NoError(t, err)
	_, err = v.srv.ApplyConfig(empty, []byte("empty"))
	require.NoError(t, err)
	resp, err = http.Get(v.admin + "/readyz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}
