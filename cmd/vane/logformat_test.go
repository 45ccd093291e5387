package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLogFormat(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "json", slog.LevelInfo)
	require.NoError(t, err)
	log.Info("config loaded", "hash", "abc")
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec), "one JSON object per line: %s", buf.String())
	assert.Equal(t, "config loaded", rec["msg"])
	assert.Equal(t, "abc", rec["hash"])

	buf.Reset()
	log, err = newLogger(&buf, "text", slog.LevelWarn)
	require.NoError(t, err)
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	assert.Equal(t, 1, strings.Count(buf.String(), "\n"))
	assert.Contains(t, buf.String(), "msg=shown k=v")

	_, err = newLogger(&buf, "yaml", slog.LevelInfo)
	assert.Error(t, err)
	code, _, errOut := runCmd("serve", "-config", "nope.yaml", "-log-format", "xml")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "-log-format")
}
