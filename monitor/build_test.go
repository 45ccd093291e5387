package monitor

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/monitor/decode"
)

func TestBuildProfileReadsWhatTheMonitorReads(t *testing.T) {
	in := strings.Join([]string{
		`{"instances": [[1.0, 2.0], [3.0, 4.0]]}`,
		``,
		`{"request": {"instances": [[5.0, 6.0]]}, "response": {"predictions": ["setosa"]}}`,
	}, "\n")
	spec := &decode.Spec{Protocol: configs.ProtocolKServeV1, Features: []string{"a", "b"}}
	var out bytes.Buffer
	rows, err := BuildProfile(strings.NewReader(in), spec, &out)
	require.NoError(t, err)
	assert.Equal(t, 3, rows)
	p, err := parseProfile(out.Bytes(), MaxProfileValues)
	require.NoError(t, err, out.String())
	assert.ElementsMatch(t, []float64{1, 3, 5}, p.Features["a"].Values)
	assert.ElementsMatch(t, []float64{2, 4, 6}, p.Features["b"].Values)
	assert.Equal(t, "categorical", p.Features["prediction"].Kind)
	assert.Equal(t, 1.0, p.Features["prediction"].Counts["setosa"])
}

func TestBuildProfileNamesTheBadLine(t *testing.T) {
	spec := &decode.Spec{Protocol: configs.ProtocolKServeV1}
	_, err := BuildProfile(strings.NewReader("{\"instances\": [[1]]}\n{\"instances\": [[\"x\"]]}\n"), spec, &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 2")
	_, err = BuildProfile(strings.NewReader("{\"instances\": [[1]]}\nnot json\n"), spec, &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 2")
	_, err = BuildProfile(strings.NewReader("\n\n"), spec, &bytes.Buffer{})
	assert.ErrorContains(t, err, "no rows")
}
