package monitor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// One request of a large batch adds at most MaxRowsPerSample rows: a
// client cannot fill (or close) windows, or the reference, by itself.
// Before the cap, one 1 MB request of 55k rows closed ~1,100 windows.
func TestRowsPerSampleAreCapped(t *testing.T) {
	f := newFixture(t, Options{})
	require.NoError(t, f.m.Configure(config(model("m",
		configs.Monitor{Window: 50, Reference: configs.Reference{Warmup: 50}, Features: []string{"x"}, Consecutive: 1}, "v1"))))
	req := `{"instances":[` + strings.TrimSuffix(strings.Repeat("[1.5],", 5000), ",") + `]}`
	f.feed("m", "v1", req, `{"predictions":[0]}`)
	rows, ok := f.value(t, "vane_monitor_rows_total", map[string]string{"model": "m", "version": "v1"})
	require.True(t, ok)
	assert.Equal(t, float64(MaxRowsPerSample), rows)
	closed, _ := f.value(t, "vane_monitor_windows_closed_total", map[string]string{"model": "m", "version": "v1"})
	assert.LessOrEqual(t, closed, float64(MaxRowsPerSample/50))
}
