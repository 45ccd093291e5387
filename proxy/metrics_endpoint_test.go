package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEndpointMetricsShowAFailingReplica: one replica of v1 fails a third
// of its requests with 503; retries hide that from clients, and the
// per-endpoint series must show it (the bad replica named, its retries
// counted), which the per-version series cannot.
func TestEndpointMetricsShowAFailingReplica(t *testing.T) {
	good := backend(t, "v1")
	var n atomic.Int64
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && n.Add(1)%3 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"version":"v1"}`)
	}))
	t.Cleanup(bad.Close)
	cfg := fmt.Sprintf(`
listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:1"
models:
  - name: iris
    match: {path_prefix: /v1/models/iris}
    protocol: kserve-v1
    timeout: 2s
    circuit_breaker: {min_requests: 1000}
    retry: {attempts: 3, budget_ratio: 1, min_concurrent: 100}
    versions:
      - name: v1
        weight: 1
        endpoints: [%q, %q]
`, good.URL, bad.URL)
	v := startVane(t, cfg)
	const requests = 60
	for range requests {
		resp, _ := post(t, v.url+"/v1/models/iris:predict", "{}", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "retries hide the bad replica from clients")
	}
	m := v.srv.metrics.endpoints
	bad503 := testutil.ToFloat64(m.requests.WithLabelValues("iris", "v1", bad.URL, "503"))
	bad200 := testutil.ToFloat64(m.requests.WithLabelValues("iris", "v1", bad.URL, "200"))
	good200 := testutil.ToFloat64(m.requests.WithLabelValues("iris", "v1", good.URL, "200"))
	assert.Positive(t, bad503, "the failing replica's 503s are counted under its URL")
	assert.Zero(t, testutil.ToFloat64(m.requests.WithLabelValues("iris", "v1", good.URL, "503")))
	assert.Equal(t, float64(requests), bad200+good200, "each request ends in one 200")
	assert.Equal(t, bad503, testutil.ToFloat64(m.retries.WithLabelValues("iris", "v1", bad.URL)),
		"every 503 was retried, and charged to the bad replica")
	assert.Zero(t, testutil.ToFloat64(m.retries.WithLabelValues("iris", "v1", good.URL)))
	assert.Equal(t, float64(n.Load()), bad503+bad200, "every attempt on the bad replica counted once")

	page := metricsText(t, v.admin)
	assert.Contains(t, page, fmt.Sprintf("vane_upstream_duration_seconds_count{model=%q,version=%q} %d", "iris", "v1", int(bad503+bad200+good200)),
		"one upstream observation per attempt")
	assert.Contains(t, page, fmt.Sprintf(`vane_endpoint_in_flight{endpoint=%q,model="iris",version="v1"} 0`, bad.URL))
	assert.Regexp(t, `vane_build_info\{goversion="go[^"]+",version="[^"]+"\} 1`, page)
}

// TestEndpointMetricsCountTransportErrors: an endpoint that refuses
// connections is counted with code "error" and reason "connect".
func TestEndpointMetricsCountTransportErrors(t *testing.T) {
	good := backend(t, "v1")
	dead := backend(t, "v2")
	deadURL := dead.URL
	v := startVane(t, twoVersions(good.URL, deadURL, 0, 1, ""))
	dead.Close() // routable (its probes passed), now refusing connections
	resp, _ := post(t, v.url+"/v1/models/iris:predict", "{}", map[string]string{"X-Vane-Version": "v2"})
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	m := v.srv.metrics.endpoints
	assert.Positive(t, testutil.ToFloat64(m.requests.WithLabelValues("iris", "v2", deadURL, "error")))
	assert.Equal(t, testutil.ToFloat64(m.requests.WithLabelValues("iris", "v2", deadURL, "error")),
		testutil.ToFloat64(m.errors.WithLabelValues("iris", "v2", deadURL, "connect")))
}
