package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/monitor"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidate(t *testing.T) {
	good, err := configs.Example("minimal.yaml")
	require.NoError(t, err)
	dir := t.TempDir()
	goodPath := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(goodPath, good, 0o600))

	code, out, errOut := runCmd("validate", "-config", goodPath)
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "ok\n", out)

	bad := strings.Replace(string(good), "weight: 20", "weight: -20", 1)
	require.NotEqual(t, string(good), bad, "minimal.yaml must have a weight of 20 for this test")
	badPath := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(badPath, []byte(bad), 0o600))
	code, out, errOut = runCmd("validate", "-config", badPath)
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	require.Len(t, lines, 1, errOut)
	assert.Contains(t, lines[0], "models[0].versions[1].weight")
	assert.Contains(t, lines[0], "(line ")

	code, _, errOut = runCmd("validate", "-config", filepath.Join(dir, "missing.yaml"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "missing.yaml")
}

func TestCommands(t *testing.T) {
	code, out, _ := runCmd("version")
	assert.Equal(t, 0, code)
	assert.True(t, strings.HasPrefix(out, "vane "), out)

	code, _, errOut := runCmd("frobnicate")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "unknown command")

	code, _, errOut = runCmd()
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "usage")
}

func TestDemoRunsAndStops(t *testing.T) {
	code, out, errOut := runCmd("demo", "-duration", "2500ms", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "/metrics")
	assert.Contains(t, out, "/status")
	last := out[strings.LastIndex(strings.TrimRight(out, "\n"), "\n")+1:]
	assert.Contains(t, last, "v1=")
	assert.Contains(t, last, "v2=")
	assert.Contains(t, last, "errors=0")
}

func TestReferenceBuild(t *testing.T) {
	var out, errb bytes.Buffer
	in := strings.NewReader("{\"instances\": [[1, 2]]}\n{\"instances\": [[3, 4]]}\n")
	code := reference([]string{"build", "-protocol", "kserve-v1", "-features", "a,b"}, in, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	assert.Contains(t, out.String(), `"format":"vane-reference/v1"`)
	assert.Contains(t, out.String(), `"a":{"kind":"numeric","values":[1,3]}`)
	assert.Contains(t, errb.String(), "2 rows")

	// The profile it writes is one a config can name.
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.json")
	require.NoError(t, os.WriteFile(ref, out.Bytes(), 0o600))
	cfg, err := configs.Parse([]byte(`
models:
  - name: iris
    match: {path_prefix: /}
    protocol: kserve-v1
    versions: [{name: v1, endpoints: ["http://127.0.0.1:1"]}]
    monitor: {features: [a, b], reference: {file: "` + ref + `"}}
`))
	require.NoError(t, err)
	mon, err := monitor.New(monitor.Options{Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	require.NoError(t, mon.Configure(cfg))
	assert.Equal(t, 2, mon.Report().Models[0].Versions[0].ReferenceSize)
	out.Reset()

	code = reference([]string{"build", "-protocol", "nope"}, strings.NewReader(""), &out, &errb)
	assert.Equal(t, 2, code)
	errb.Reset()
	code = reference([]string{"build", "-protocol", "grpc"}, strings.NewReader(""), &out, &errb)
	assert.Equal(t, 2, code)
	assert.Contains(t, errb.String(), "-protocol kserve-v2", "a grpc model is told which JSON form to build from")
	code = reference([]string{"build", "-protocol", "kserve-v1"}, strings.NewReader("garbage\n"), &out, &errb)
	assert.Equal(t, 1, code)
	assert.Contains(t, errb.String(), "line 1")
}
