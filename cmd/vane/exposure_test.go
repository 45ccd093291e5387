package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAdminBeyondLoopbackRefused: validate and serve refuse an admin
// listener beyond loopback without a token, naming the field and line;
// admin.insecure: true accepts it on purpose.
func TestAdminBeyondLoopbackRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := `admin:
  listen: "0.0.0.0:0"
models:
  - name: iris
    match: {path_prefix: /}
    versions:
      - {name: v1, endpoints: ["http://127.0.0.1:8501"]}
`
	path := filepath.Join(dir, "vane.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	for _, cmd := range []string{"validate", "serve"} {
		code, _, errOut := runCmd(cmd, "-config", path)
		assert.Equal(t, 1, code, cmd)
		assert.Contains(t, errOut, "admin.listen (line 2)", cmd)
		assert.Contains(t, errOut, "admin.insecure", cmd)
	}
	ok := strings.Replace(cfg, `  listen: "0.0.0.0:0"`, "  listen: \"0.0.0.0:0\"\n  insecure: true", 1)
	require.NoError(t, os.WriteFile(path, []byte(ok), 0o600))
	code, out, errOut := runCmd("validate", "-config", path)
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "ok\n", out)
}
