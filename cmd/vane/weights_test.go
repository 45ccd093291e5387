package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

func TestWeightsCommand(t *testing.T) {
	raw, err := configs.Example("minimal.yaml")
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "vane.yaml")
	text := "state_dir: " + filepath.Join(dir, "state") + "\n" + string(raw)
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))

	code, out, errOut := runCmd("weights", "-config", path)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "iris v1=80 v2=20\n", out)

	code, out, errOut = runCmd("weights", "-config", path, "set", "iris", "v2=100", "v1=0")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "iris v1=0 v2=100 (was v1=80 v2=20)\n", out)
	got, _ := os.ReadFile(path)
	assert.Equal(t, strings.Replace(strings.Replace(text, "weight: 80", "weight: 0", 1), "weight: 20", "weight: 100", 1), string(got))

	code, out, errOut = runCmd("weights", "-config", path, "promote", "iris", "v1")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "iris v1=100 v2=0 (was v1=0 v2=100)\n", out)

	code, out, errOut = runCmd("weights", "-config", path, "rollback", "iris")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "iris v1=0 v2=100 (was v1=100 v2=0)\n", out)

	code, out, errOut = runCmd("weights", "-config", path, "history", "iris")
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.Contains(t, lines[0], "vane weights set: v1=80 v2=20 -> v1=0 v2=100")
	assert.Contains(t, lines[2], "vane weights rollback: v1=100 v2=0 -> v1=0 v2=100 (undoes 2)")

	// A refused edit names the field and leaves the file as it was.
	before, _ := os.ReadFile(path)
	code, _, errOut = runCmd("weights", "-config", path, "set", "iris", "v2=0")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "models[0].versions (line ")
	assert.Contains(t, errOut, "at least one version must have weight > 0")
	after, _ := os.ReadFile(path)
	assert.Equal(t, string(before), string(after))

	code, _, errOut = runCmd("weights", "-config", path, "set", "iris", "v2")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "not VERSION=WEIGHT")
	code, _, _ = runCmd("weights", "-config", path, "frob")
	assert.Equal(t, 2, code)
}
