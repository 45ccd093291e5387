package proxy

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnchangedReloadIsCounted: POST /reload of an untouched file loads
// nothing, keeps the hash, and counts as result="unchanged".
func TestUnchangedReloadIsCounted(t *testing.T) {
	be := backend(t, "v1")
	r := runFromFile(t, twoVersions(be.URL, be.URL, 1, 1, ""))
	before := metricSum(t, r.admin, "vane_config_reloads_total", `result="unchanged"`)
	for range 2 {
		resp, err := http.Post(r.admin+"/reload", "text/plain", nil)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Equal(t, before+2, metricSum(t, r.admin, "vane_config_reloads_total", `result="unchanged"`))
	assert.Zero(t, metricSum(t, r.admin, "vane_config_reloads_total", `result="success"`))
}
