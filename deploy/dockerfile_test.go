package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDockerfile checks what can be checked without a container engine
// (none runs in CI): the two targets the README and the Kubernetes
// example name exist, run as non-root on an empty or distroless base, and
// build static binaries from packages that exist.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	require.NoError(t, err)
	type stage struct{ base, name, body string }
	var stages []stage
	from := regexp.MustCompile(`(?im)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$`)
	idx := from.FindAllStringSubmatchIndex(string(raw), -1)
	require.NotEmpty(t, idx)
	for i, m := range idx {
		end := len(raw)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		name := ""
		if m[4] >= 0 {
			name = string(raw[m[4]:m[5]])
		}
		stages = append(stages, stage{base: string(raw[m[2]:m[3]]), name: name, body: string(raw[m[1]:end])})
	}
	byName := map[string]stage{}
	for _, s := range stages {
		byName[s.name] = s
	}
	last := stages[len(stages)-1]
	assert.Equal(t, "vane", last.name, "vane is the default (last) target")
	toy, ok := byName["toymodel"]
	require.True(t, ok, "docker build --target toymodel")
	for _, s := range []stage{last, toy} {
		assert.True(t, s.base == "scratch" || strings.HasPrefix(s.base, "gcr.io/distroless/"), "%s runs on scratch or distroless, not %s", s.name, s.base)
		user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(s.body)
		require.NotNil(t, user, "%s sets USER", s.name)
		assert.NotRegexp(t, `^(0|root)(:|$)`, user[1], "%s runs as non-root", s.name)
		assert.Contains(t, s.body, "ENTRYPOINT", s.name)
	}
	build := string(raw)
	for _, pkg := range regexp.MustCompile(`go build [^\n]*?(\./\S+)`).FindAllStringSubmatch(build, -1) {
		info, err := os.Stat(filepath.Join("..", pkg[1]))
		assert.NoError(t, err, "the Dockerfile builds %s", pkg[1])
		if err == nil {
			assert.True(t, info.IsDir(), pkg[1])
		}
	}
	assert.Equal(t, 2, strings.Count(build, "CGO_ENABLED=0 go build"), "both binaries are static")
	assert.Contains(t, last.body, "/etc/vane/vane.yaml", "the config path the Kubernetes example mounts")
}
