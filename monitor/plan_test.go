package monitor

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// Prepare changes nothing the monitor serves: neither a plan that fails
// (a reference file that cannot be read) nor one that is never committed.
// Commit then applies it.
func TestPrepareChangesNothingUntilCommit(t *testing.T) {
	f := newFixture(t, Options{})
	mon := configs.Monitor{Window: 50, Reference: configs.Reference{Warmup: 100}, Features: []string{"x"}}
	require.NoError(t, f.m.Configure(config(model("m", mon, "v1"))))
	served := f.m.snap.Load()
	report := f.m.Report()

	bad := config(model("m", configs.Monitor{Window: 10,
		Reference: configs.Reference{File: t.TempDir() + "/missing.json"}}, "v1", "v2"))
	_, err := f.m.Prepare(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.json")

	next := mon
	next.Window = 20
	plan, err := f.m.Prepare(config(model("m", next, "v1", "v2")))
	require.NoError(t, err)
	assert.Same(t, served, f.m.snap.Load(), "a prepared config is not applied")
	assert.Equal(t, report, f.m.Report())

	plan.Commit()
	assert.Equal(t, 20, f.version(t, "m", "v1").WindowSize)
	assert.Equal(t, 20, f.version(t, "m", "v2").WindowSize)
	assert.Same(t, served.models["m"].versions["v1"], f.m.snap.Load().models["m"].versions["v1"],
		"a window change keeps the version's state")
}
