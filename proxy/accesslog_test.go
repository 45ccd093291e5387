package proxy

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/internal/testutil"
)

// startLogged serves yaml with a JSON logger at Info into buf.
func startLogged(t *testing.T, yaml string, buf *testutil.Buffer) *vane {
	t.Helper()
	cfg, err := configs.Parse([]byte(yaml))
	require.NoError(t, err)
	reg := NewRegistry()
	srv, err := New(cfg, []byte(yaml), Options{Registerer: reg, Gatherer: reg,
		Logger: slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	require.NoError(t, err)
	addr := serveLoopback(t, srv)
	waitAllRoutable(t, srv)
	return &vane{srv: srv, reg: reg, url: "http://" + addr}
}

// accessRecords are the "access" records in a JSON log.
func accessRecords(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		if rec["msg"] == "access" {
			out = append(out, rec)
		}
	}
	return out
}

func TestAccessLog(t *testing.T) {
	be := backend(t, "v1")
	var buf testutil.Buffer
	v := startLogged(t, twoVersions(be.URL, be.URL, 1, 0, "")+"access_log: {enabled: true}\n", &buf)

	resp, _ := post(t, v.url+"/v1/models/iris:predict", `{"instances":[[1,2]]}`, map[string]string{"X-Request-Id": "req-1"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = post(t, v.url+"/v1/models/iris:predict", "{}", map[string]string{"X-Request-Id": "req-2", "X-Vane-Version": "nope"})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, _ = post(t, v.url+"/elsewhere", "{}", map[string]string{"X-Request-Id": "req-3"})
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	h2, err := h2cClient().Post(v.url+"/v1/models/iris:predict", "application/json", strings.NewReader(`{"instances":[]}`))
	require.NoError(t, err)
	_, _ = io.ReadAll(h2.Body) // closing it unread may reset the stream before the answer is written
	_ = h2.Body.Close()
	require.Equal(t, http.StatusOK, h2.StatusCode)

	var recs []map[string]any
	require.Eventually(t, func() bool { // a record is written as its handler returns, after the answer
		recs = accessRecords(t, buf.String())
		return len(recs) == 4
	}, 5*time.Second, 5*time.Millisecond, buf.String())
	ok := recs[0]
	assert.Equal(t, "req-1", ok["request_id"])
	assert.Equal(t, "iris", ok["model"])
	assert.Equal(t, "v1", ok["version"])
	assert.Equal(t, be.URL, ok["endpoint"])
	assert.EqualValues(t, 200, ok["status"])
	assert.EqualValues(t, 0, ok["retries"])
	assert.EqualValues(t, len(`{"instances":[[1,2]]}`), ok["bytes_in"])
	assert.Positive(t, ok["bytes_out"])
	assert.Positive(t, ok["upstream_seconds"])
	assert.GreaterOrEqual(t, ok["duration_seconds"], ok["upstream_seconds"])

	assert.Equal(t, "req-2", recs[1]["request_id"])
	assert.Equal(t, "iris", recs[1]["model"], "refused before an attempt, the model is still named")
	assert.EqualValues(t, 400, recs[1]["status"])
	assert.Equal(t, "", recs[1]["endpoint"])
	assert.Equal(t, "", recs[2]["model"])
	assert.EqualValues(t, 404, recs[2]["status"])

	assert.Equal(t, "HTTP/2.0", recs[3]["proto"])
	assert.Equal(t, be.URL, recs[3]["endpoint"])
	assert.EqualValues(t, 200, recs[3]["status"])
	assert.Positive(t, recs[3]["bytes_out"])
	assert.NotEmpty(t, recs[3]["request_id"], "vane's own id when the client sent none")
}

func TestAccessLogSampledOff(t *testing.T) {
	be := backend(t, "v1")
	var buf testutil.Buffer
	v := startLogged(t, twoVersions(be.URL, be.URL, 1, 0, "")+"access_log: {enabled: true, sample_rate: 0}\n", &buf)
	for range 5 {
		resp, _ := post(t, v.url+"/v1/models/iris:predict", "{}", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Empty(t, accessRecords(t, buf.String()), "sample_rate 0 logs nothing")
}
