package proxy

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/internal/testutil"
)

// TestMetricsPassPromtool runs the real promtool over a live /metrics page
// after traffic of every kind (served, refused, upstream failure). CI
// installs promtool (Debian's prometheus package) and sets CI, so there
// the test cannot skip.
func TestMetricsPassPromtool(t *testing.T) {
	promtool := testutil.Promtool(t)
	b1 := backend(t, "v1")
	v := startVaneUnready(t, twoVersions(b1.URL, "http://127.0.0.1:1", 1, 1, ""))
	waitReady(t, v.admin) // v1 serves; v2's endpoint is down on purpose
	for range 4 {
		post(t, v.url+"/v1/models/iris:predict", "{}", nil)
	}
	post(t, v.url+"/unrouted", "{}", nil)
	post(t, v.url+"/v1/models/iris:predict", "{}", map[string]string{"X-Vane-Version": "nope"})
	page := metricsText(t, v.admin)
	for _, name := range []string{"vane_requests_total", "vane_request_duration_seconds", "vane_version_weight",
		"vane_version_share", "vane_config_last_reload_successful", "vane_config_reloads_total", "go_goroutines"} {
		assert.Contains(t, page, "# TYPE "+name+" ", "metric %s missing", name)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader([]byte(page))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
	assert.Empty(t, string(bytes.TrimSpace(out)), "promtool lint findings")
}

func TestPprofEndpoints(t *testing.T) {
	be := backend(t, "v1")
	v := startVane(t, twoVersions(be.URL, be.URL, 1, 0, ""))
	for path, code := range map[string]int{
		"/debug/pprof/heap": 200, "/debug/pprof/goroutine": 200, "/debug/pprof/profile?seconds=1": 200,
		"/debug/pprof/nope": 404, "/debug/pprof/profile?seconds=0": 400,
	} {
		resp, err := http.Get(v.admin + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, code, resp.StatusCode, path)
		if code == 200 {
			assert.NotEmpty(t, body, path)
		}
	}
}
