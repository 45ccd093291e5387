package configs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUnknownKeysAtEveryLevel(t *testing.T) {
	src := `listen: 127.0.0.1:8080
listn: 127.0.0.1:8081
admin:
  token: secret
models:
  - name: iris
    matcher: {path_prefix: /}
    match:
      path_prefix: /iris
      method: POST
    versions:
      - name: v1
        endpoints: ["http://127.0.0.1:8501"]
      - name: v2
        wieght: 20
        endpoints: ["http://127.0.0.1:8502"]
    health:
      intervall: 5s
    monitor:
      reference:
        samples: 10
`
	errs := problems(t, src)
	want := []struct{ path, marker, msg string }{
		{"listn", "listn:", `unknown key "listn"; did you mean "listen"?`},
		{"admin.token", "token:", `unknown key "token"`},
		{"models[0].matcher", "matcher:", `unknown key "matcher"; did you mean "match"?`},
		{"models[0].match.method", "method:", `unknown key "method"`},
		{"models[0].versions[1].wieght", "wieght:", `unknown key "wieght"; did you mean "weight"?`},
		{"models[0].health.intervall", "intervall:", `unknown key "intervall"; did you mean "interval"?`},
		{"models[0].monitor.reference.samples", "samples:", `unknown key "samples"`},
	}
	require.Len(t, errs, len(want), "every unknown key, nothing else:\n%v", errs)
	for i, w := range want {
		t.Run(w.path, func(t *testing.T) {
			p := errs[i] // sorted by line, which is the order above
			assert.Equal(t, w.path, p.Path)
			assert.Equal(t, lineOf(t, src, w.marker, 1), p.Line)
			assert.Equal(t, w.msg, p.Msg)
		})
	}
}

func TestTypeErrors(t *testing.T) {
	tests := []struct {
		name, field, value string // value replaces the field's line in baseYAML
		path, msg          string
		marker             string // of the expected line; default the last line of value
	}{
		{"weight not a number", "weight: 10", "weight: abc", "models[0].versions[1].weight", `must be a number, got "abc"`, ""},
		{"weight quoted", "weight: 10", `weight: "10"`, "models[0].versions[1].weight", `must be a number, got "10"`, ""},
		{"duration without unit", "timeout: 30s", "timeout: 5", "models[0].timeout", `must be a duration with a unit, such as "5s" or "250ms"; got the bare number 5`, ""},
		{"duration float without unit", "timeout: 30s", "timeout: 1.5", "models[0].timeout", "got the bare number 1.5", ""},
		{"duration word", "timeout: 30s", "timeout: fast", "models[0].timeout", `must be a duration such as "250ms", "5s" or "1m30s"; got "fast"`, ""},
		{"duration list", "timeout: 30s", "timeout: [5s]", "models[0].timeout", "must be a duration, got a list", ""},
		{"int with fraction", "attempts: 2", "attempts: 2.5", "models[0].retry.attempts", `must be an integer, got "2.5"`, ""},
		{"int quoted", "attempts: 2", `attempts: "2"`, "models[0].retry.attempts", `must be an integer, got "2"`, ""},
		{"int bool", "attempts: 2", "attempts: true", "models[0].retry.attempts", `must be an integer, got "true"`, ""},
		{"int overflow", "attempts: 2", "attempts: 99999999999999999999", "models[0].retry.attempts", `must be an integer, got "99999999999999999999"`, ""},
		{"string gets mapping", "protocol: kserve-v1", "protocol: {name: x}", "models[0].protocol", "must be a string, got a mapping", ""},
		{"struct gets scalar", "    retry:\n      attempts: 2", "    retry: fast", "models[0].retry", `must be a mapping, got "fast"`, ""},
		{"list gets scalar", `endpoints: ["http://127.0.0.1:8501"]`, `endpoints: "http://127.0.0.1:8501"`, "models[0].versions[0].endpoints", `must be a list, got "http://127.0.0.1:8501"`, ""},
		{"map gets list", "headers: {x-team: ml}", "headers: [x-team]", "models[0].match.headers", "must be a mapping, got a list", ""},
		{"status not an integer", "failure_ratio: 0.5", "failure_statuses: [500, x]", "models[0].circuit_breaker.failure_statuses[1]", `must be an integer, got "x"`, ""},
		{"alert_on gets scalar", "sample_rate: 1.0", "alert_on: ks", "models[0].monitor.alert_on", `must be a list, got "ks"`, ""},
		{"paths gets list", "sample_rate: 1.0", "paths: [inputs.0]", "models[0].monitor.paths", "must be a mapping, got a list", ""},
		{"max_age without unit", "sample_rate: 1.0", "max_age: 300", "models[0].monitor.max_age", "got the bare number 300", ""},
		{"unknown threshold", "sample_rate: 1.0", "thresholds: {kl: 0.1}", "models[0].monitor.thresholds.kl", `unknown key "kl"; did you mean "ks"?`, ""},
		{"sampling gets list", "shutdown:", "sampling: [1]\nshutdown:", "sampling", "must be a mapping, got a list", "sampling:"},
		{"models gets mapping", "models:\n  - name: iris", "models:\n  iris:\n  - name: iris", "models", "must be a list, got a mapping", "iris:"}, // the value's line
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := edit(t, tt.field, tt.value)
			errs := problems(t, src)
			require.Len(t, errs, 1, "only the type error, no follow-on rule problems:\n%v", errs)
			assert.Equal(t, tt.path, errs[0].Path)
			marker := tt.marker
			if marker == "" {
				marker = strings.TrimSpace(tt.value[strings.LastIndex(tt.value, "\n")+1:])
			}
			assert.Equal(t, lineOf(t, src, marker, 1), errs[0].Line)
			assert.Contains(t, errs[0].Msg, tt.msg)
		})
	}
}

func TestWholeFloatIsAnInteger(t *testing.T) {
	cfg := mustParse(t, edit(t, "sample_rate: 1.0", "max_body_bytes: 1e6"))
	assert.Equal(t, 1000000, cfg.Models[0].Monitor.MaxBodyBytes)
}

func TestManyProblemsAtOnce(t *testing.T) {
	src := edit(t,
		"listen: 127.0.0.1:8080", "listen: nowhere",
		"protocol: kserve-v1", "protocol: kserve-v1\n    colour: blue",
		"weight: 10", "weight: -5",
		"timeout: 1s", "timeout: soon",
		"- name: wine", "- name: WINE",
		`endpoints: ["http://127.0.0.1:8601"]`, `endpoints: ["ftp://127.0.0.1:8601"]`,
	)
	errs := problems(t, src)
	paths := make([]string, len(errs))
	for i, p := range errs {
		paths[i] = p.Path
	}
	assert.Equal(t, []string{
		"listen",
		"models[0].colour",
		"models[0].versions[1].weight",
		"models[0].health.timeout",
		"models[1].name",
		"models[1].versions[0].endpoints[0]",
	}, paths, "all problems, ordered by line:\n%v", errs)
	lines := strings.Split(errs.Error(), "\n")
	require.Len(t, lines, len(errs))
	assert.Equal(t, `models[0].versions[1].weight (line 21): must be >= 0, got -5`, lines[2])
}

// A key that failed to decode hides the rules that its zero value would
// break, but not the unrelated ones.
func TestDecodeProblemsHideFollowOns(t *testing.T) {
	src := edit(t,
		"path_prefix: /v1/models/iris", "path_prefx: /v1/models/iris",
		"weight: 90", "weight: x",
		"weight: 10", "weight: 0",
		"attempts: 2", "attempts: 0",
	)
	errs := problems(t, src)
	require.Len(t, errs, 3, "%v", errs)
	at(t, errs, "models[0].match.path_prefx")
	at(t, errs, "models[0].versions[0].weight")
	at(t, errs, "models[0].retry.attempts")
}

func TestDuplicateKeys(t *testing.T) {
	src := edit(t, "timeout: 30s", "timeout: 30s\n    timeout: 10s")
	errs := problems(t, src)
	require.Len(t, errs, 1, "%v", errs)
	assert.Equal(t, "models[0].timeout", errs[0].Path)
	assert.Equal(t, lineOf(t, src, "    timeout: 10s", 1), errs[0].Line)
	assert.Contains(t, errs[0].Msg, "duplicate key")
	assert.Contains(t, errs[0].Msg, "first set on line 12")
}

func TestAliasExpansionIsBounded(t *testing.T) {
	// 100 models × 2000 versions × 10 endpoints from a file of 40 kB.
	var b strings.Builder
	b.WriteString("a: &a [" + strings.Repeat(`"http://127.0.0.1:1",`, 9) + `"http://127.0.0.1:1"]` + "\n")
	b.WriteString("v: &v [" + strings.Repeat("{name: y, endpoints: *a},", 1999) + "{name: y, endpoints: *a}]\n")
	b.WriteString("models: [" + strings.Repeat("{name: x, versions: *v},", 99) + "{name: x, versions: *v}]\n")
	errs := problems(t, b.String())
	assert.Contains(t, errs.Error(), "document too large or too deeply aliased")
}

func TestSelfMergeIsBounded(t *testing.T) {
	errs := problems(t, "admin: &a\n  <<: *a\n  listen: 127.0.0.1:1\n")
	assert.NotEmpty(t, errs)
}

func TestBoolKeys(t *testing.T) {
	base := "admin:\n  token_file: /run/token\n  guard_reads: %s\nmodels:\n  - name: m\n    match: {path_prefix: /}\n    versions: [{name: v1, endpoints: [\"http://127.0.0.1:1\"]}]\n"
	cfg, err := Parse([]byte(fmt.Sprintf(base, "true")))
	require.NoError(t, err)
	assert.True(t, cfg.Admin.GuardReads)
	for _, bad := range []string{"maybe", "yes", "1", "[true]"} {
		_, err := Parse([]byte(fmt.Sprintf(base, bad)))
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "admin.guard_reads (line 3)", bad)
	}
}
