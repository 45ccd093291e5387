package demo

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/internal/testutil"
)

// TestDemoShowsTheSplitAndTheDrift runs the demo as `vane demo` does, with
// the drift brought forward: the split is visible, the shifted feature and
// the prediction alert, the stable features do not.
func TestDemoShowsTheSplitAndTheDrift(t *testing.T) {
	var out testutil.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", Out: &out,
			Tick: 250 * time.Millisecond, DriftAfter: 3 * time.Second})
	}()
	require.Eventually(t, func() bool {
		return strings.Contains(out.String(), "DRIFT ALERT: iris v1 petal_length")
	}, 30*time.Second, 50*time.Millisecond, "no alert for the shifted feature:\n%s", out.String())
	// The shadow's agreement and the accuracy from the posted labels show
	// on the /compare line.
	require.Eventually(t, func() bool {
		return strings.Contains(out.String(), "v3 (shadow) accuracy") && strings.Contains(out.String(), "agreement 0.")
	}, 30*time.Second, 50*time.Millisecond, "no compare line:\n%s", out.String())
	cancel()
	require.NoError(t, <-done)
	text := out.String()
	assert.Contains(t, text, "/metrics")
	assert.Regexp(t, `page +http://127\.0\.0\.1:\d+/ `, text, "the status page's URL")
	assert.Contains(t, text, "/drift")
	assert.Contains(t, text, "input drift starts now")
	for _, stable := range []string{"sepal_length", "sepal_width", "petal_width"} {
		assert.NotContains(t, text, "DRIFT ALERT: iris v1 "+stable, "a stable feature alerted")
	}
	last := text[strings.LastIndex(strings.TrimRight(text, "\n"), "\n")+1:]
	assert.Contains(t, last, "errors=0")
	assert.Contains(t, last, "v2=")
}
