package configs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every shipped example, present and future (demo.yaml among them), loads.
func TestExamplesLoad(t *testing.T) {
	names := Examples()
	assert.Subset(t, names, []string{"example", "minimal"})
	files, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	assert.Len(t, names, len(files), "every *.yaml of the directory is embedded")
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, err := Example(name)
			require.NoError(t, err)
			onDisk, err := os.ReadFile(name + ".yaml")
			require.NoError(t, err)
			assert.Equal(t, onDisk, data)
			_, err = Parse(data)
			require.NoError(t, err)
		})
	}
}

func TestExampleIsTheContract(t *testing.T) {
	cfg := mustParse(t, string(mustExample(t, "example.yaml")))
	m := cfg.Models[0]
	assert.Equal(t, ProtocolKServeV1, m.Protocol)
	assert.Equal(t, "x-user-id", m.Routing.StickyHeader)
	assert.Equal(t, "v1", m.Routing.Fallback)
	assert.Equal(t, []float64{90, 10}, []float64{m.Versions[0].Weight, m.Versions[1].Weight})
	assert.Equal(t, []string{"sepal_length", "sepal_width", "petal_length", "petal_width"}, m.Monitor.Features)

	// Every key line of the example carries a comment.
	for i, line := range strings.Split(string(mustExample(t, "example")), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || !strings.Contains(trimmed, ":") {
			continue
		}
		assert.Contains(t, line, "#", "line %d has no comment: %s", i+1, line)
	}
}

// The example shows every key of the file, set or commented out.
func TestExampleShowsEveryKey(t *testing.T) {
	text := string(mustExample(t, "example"))
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[time.Duration]() {
			return
		}
		for f := range typ.Fields() {
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			re := regexp.MustCompile(`(?m)^[\s#-]*(- )?` + regexp.QuoteMeta(key) + `:`)
			assert.True(t, re.MatchString(text), "example.yaml lacks %s", child(path, key))
			walk(f.Type, child(path, key))
		}
	}
	walk(reflect.TypeFor[Config](), "")
}

// The keys the example shows commented out for protocol raw are valid
// once uncommented.
func TestExampleRawKeys(t *testing.T) {
	text := string(mustExample(t, "example"))
	var b strings.Builder
	for line := range strings.Lines(text) {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "protocol:"):
			line = "    protocol: raw\n"
		case strings.HasPrefix(trimmed, "features:"), strings.HasPrefix(trimmed, "path:"):
			continue
		case strings.HasPrefix(trimmed, "# paths:"), strings.HasPrefix(trimmed, "# prediction_path:"):
			line = strings.Replace(line, "# ", "", 1)
		}
		b.WriteString(line)
	}
	mon := mustParse(t, b.String()).Models[0].Monitor
	assert.NotEmpty(t, mon.Paths)
	assert.NotEmpty(t, mon.PredictionPath)
}

func TestMinimalIsEightyTwenty(t *testing.T) {
	cfg := mustParse(t, string(mustExample(t, "minimal")))
	require.Len(t, cfg.Models, 1)
	vs := cfg.Models[0].Versions
	require.Len(t, vs, 2)
	assert.Equal(t, 80.0, vs[0].Weight)
	assert.Equal(t, 20.0, vs[1].Weight)
}

func TestExampleUnknown(t *testing.T) {
	for _, name := range []string{"nope", "../go.mod", "", "sub/x"} {
		_, err := Example(name)
		assert.True(t, errors.Is(err, fs.ErrNotExist), "%q: %v", name, err)
	}
}

func mustExample(t *testing.T, name string) []byte {
	t.Helper()
	data, err := Example(name)
	require.NoError(t, err)
	return data
}
