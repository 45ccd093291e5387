package health

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/internal/testutil"
)

// TestNewEndpointThatNeverAnswersIsReportedOnce: an endpoint that never
// passed a probe gets no traffic, and the operator is told why, once.
func TestNewEndpointThatNeverAnswersIsReportedOnce(t *testing.T) {
	var logs testutil.Buffer
	c, err := NewChecker(Options{Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	require.NoError(t, err)
	f := &fixture{Checker: c}
	b := newBackend(t, http.StatusNotFound)
	tg := httpTarget(b, "v1", fastHealth(1, 1))
	f.Update([]Target{tg})
	f.run(t)
	require.Eventually(t, func() bool { return b.probes.Load() >= 5 }, waitFor, tick)
	assert.False(t, f.Routable(tg.Key))
	text := logs.String()
	assert.Equal(t, 1, strings.Count(text, "endpoint not healthy yet"), text)
	assert.Contains(t, text, "404")

	// Once it answers, it is healthy and nothing more is said of the past.
	b.status.Store(http.StatusOK)
	f.waitRoutable(t, tg.Key, true)
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, 1, strings.Count(logs.String(), "endpoint not healthy yet"))
}
