package xds

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestControlPlaneAdmin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.yaml")
	writeFile(t, path, cpFile(90, 10))
	cp := startCP(t, path, "")
	s := startSidecar(t, []string{cp.addr}, nil)
	waitWeights(t, s, 90, 10)
	admin := httptest.NewServer(cp.cp.AdminHandler())
	defer admin.Close()

	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(admin.URL + p)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, p)
	}
	resp, err := http.Get(admin.URL + "/status")
	require.NoError(t, err)
	var st ControlPlaneStatus
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	_ = resp.Body.Close()
	require.Len(t, st.Groups, 2)
	assert.Equal(t, "prod", st.Groups[0].Name)
	assert.Equal(t, []string{"iris"}, st.Groups[0].Models)
	assert.Equal(t, []string{"node-" + t.Name()}, st.Groups[0].Nodes)
	assert.Len(t, st.Groups[0].Versions, 4)

	// The file turns bad under the watcher's nose: POST /reload says why.
	writeFile(t, path, strings.Replace(cpFile(90, 10), "name: staging", "name: prod", 1))
	resp, err = http.Post(admin.URL+"/reload", "", nil)
	require.NoError(t, err)
	var body struct {
		Problems []string `json:"problems"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.NotEmpty(t, body.Problems)
	assert.Contains(t, body.Problems[0], `groups[1].name (line 12): duplicate group name "prod"`)

	writeFile(t, path, cpFile(70, 30))
	resp, err = http.Post(admin.URL+"/reload", "", nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	waitWeights(t, s, 70, 30)

	resp, err = http.Get(admin.URL + "/metrics")
	require.NoError(t, err)
	text, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Contains(t, string(text), "vane_controlplane_streams 1")
	assert.Contains(t, string(text), `vane_config_reloads_total{result="failure"}`)
}
