package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/vaneproxy/vane/internal/testutil"
)

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of collapsed rows
}

// grafanaVar matches $name, ${name} and ${name:format}.
var grafanaVar = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|\$([A-Za-z0-9_]+)`)

// concrete replaces the dashboard's variables with values a real query
// could have, so that the expression can be parsed as PromQL.
func concrete(expr string) string {
	values := map[string]string{"model": "iris", "version": "v1", "__rate_interval": "1m", "__interval": "1m",
		"__range": "1h", "__range_s": "3600"}
	return grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		if v, ok := values[name]; ok {
			return v
		}
		return m // left as is: promtool then reports it
	})
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("grafana", "vane.json"))
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(raw, &d))
	return d
}

func (d dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// TestDashboard: the datasource is a variable, model and version are
// variables, the panels cover what operators asked for, and every query
// reads only metrics a vane registers.
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	known := vaneMetrics(t)
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" {
			assert.Empty(t, unknownMetrics(v.Definition, known), "variable %s", v.Name)
			require.NotNil(t, v.Datasource, "variable %s", v.Name)
			assert.Equal(t, "${datasource}", v.Datasource.UID, "variable %s uses the datasource variable", v.Name)
		}
	}
	assert.Equal(t, "datasource", vars["datasource"])
	assert.Equal(t, "query", vars["model"])
	assert.Equal(t, "query", vars["version"])

	var titles []string
	queries := 0
	for _, p := range d.allPanels() {
		titles = append(titles, p.Title)
		if p.Type == "row" {
			continue
		}
		require.NotNil(t, p.Datasource, p.Title)
		assert.Equal(t, "${datasource}", p.Datasource.UID, "panel %q uses the datasource variable", p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			queries++
			assert.Empty(t, unknownMetrics(tg.Expr, known), "panel %q queries metrics vane does not export: %s", p.Title, tg.Expr)
			if tg.Datasource != nil {
				assert.Equal(t, "${datasource}", tg.Datasource.UID, p.Title)
			}
		}
	}
	all := strings.ToLower(strings.Join(titles, "\n"))
	for _, want := range []string{"traffic split", "error ratio", "latency", "by endpoint", "health", "breaker", "drift"} {
		assert.Contains(t, all, want, "a panel about %s", want)
	}
	assert.Greater(t, queries, 10)
}

// TestDashboardQueriesParse runs every query (variables made concrete)
// through promtool's PromQL parser, as recording rules of a throwaway
// rule file.
func TestDashboardQueriesParse(t *testing.T) {
	bin := testutil.Promtool(t)
	d := loadDashboard(t)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, p := range d.allPanels() {
		for i, tg := range p.Targets {
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard:panel%d:q%d", len(rules), i), Expr: concrete(tg.Expr)})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" { // label_values(selector, label): the selector is PromQL
			if m := regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`).FindStringSubmatch(v.Definition); m != nil {
				rules = append(rules, rule{Record: "dashboard:var:" + v.Name, Expr: concrete(m[1])})
			} else {
				t.Errorf("variable %s: %q is not label_values(selector, label)", v.Name, v.Definition)
			}
		}
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "dashboard.rules.yaml")
	require.NoError(t, os.WriteFile(f, out, 0o600))
	res, err := exec.Command(bin, "check", "rules", f).CombinedOutput()
	assert.NoError(t, err, "promtool could not parse a dashboard query:\n%s", res)
}

func TestConcrete(t *testing.T) {
	assert.Equal(t, `rate(x{model=~"iris"}[1m])`, concrete(`rate(x{model=~"$model"}[$__rate_interval])`))
	assert.Equal(t, `x{version=~"v1"}`, concrete(`x{version=~"${version:regex}"}`))
	assert.Equal(t, `x{a="$nope"}`, concrete(`x{a="$nope"}`))
}
