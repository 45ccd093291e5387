package routing

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// hdrs is a Headers fake; keys are looked up exactly as given.
type hdrs map[string][]byte

func (h hdrs) Peek(key string) []byte { return h[key] }

// ver builds a version config; with no endpoints it gets one of its own.
func ver(name string, weight float64, endpoints ...string) configs.Version {
	if len(endpoints) == 0 {
		endpoints = []string{fmt.Sprintf("http://%s.backend:8000", name)}
	}
	return configs.Version{Name: name, Weight: weight, Endpoints: endpoints}
}

// model builds a model config matching the path prefix "/<name>", with
// on_unhealthy: redistribute and no sticky header.
func model(name string, versions ...configs.Version) configs.Model {
	return configs.Model{
		Name:     name,
		Match:    configs.Match{PathPrefix: "/" + name},
		Protocol: configs.ProtocolRaw,
		Routing:  configs.Routing{OnUnhealthy: configs.OnUnhealthyRedistribute},
		Versions: versions,
	}
}

// sticky sets the model's sticky header.
func sticky(m configs.Model) configs.Model {
	m.Routing.StickyHeader = "x-user-id"
	return m
}

// withPolicy sets on_unhealthy (and the fallback for "fallback").
func withPolicy(m configs.Model, policy, fallback string) configs.Model {
	m.Routing.OnUnhealthy = policy
	m.Routing.Fallback = fallback
	return m
}

func config(models ...configs.Model) *configs.Config {
	return &configs.Config{Listen: "127.0.0.1:8080", Models: models}
}

func build(t testing.TB, cfg *configs.Config, prev *Table) *Table {
	t.Helper()
	tbl, err := Build(cfg, prev)
	require.NoError(t, err)
	return tbl
}

// only builds a one-model table and returns the model.
func only(t testing.TB, m configs.Model) *Model {
	t.Helper()
	return build(t, config(m), nil).Models()[0]
}

// setVersion marks every endpoint of the named version routable or not.
func setVersion(t testing.TB, tbl *Table, m *Model, name string, ok bool) {
	t.Helper()
	v := m.Version([]byte(name))
	require.NotNil(t, v, "version %s", name)
	for _, e := range v.Endpoints {
		tbl.SetRoutable(e, ok)
	}
}

// countCycles picks cycles full weighted cycles (no override, no sticky)
// and counts the picks per version; errors are counted under "error".
func countCycles(t testing.TB, m *Model, cycles int) (map[string]int, int) {
	t.Helper()
	n := cycles * len(m.state.Load().cycle)
	counts := map[string]int{}
	for range n {
		v, err := m.Pick(nil, nil)
		if err != nil {
			require.ErrorIs(t, err, ErrNoRoutableVersion)
			counts["error"]++
			continue
		}
		counts[v.Name]++
	}
	return counts, n
}

func userKey(i int) []byte { return fmt.Appendf(nil, "user-%d", i) }

// stickyPick picks for a sticky user and fails the test on error.
func stickyPick(t testing.TB, m *Model, user []byte) string {
	t.Helper()
	v, err := m.Pick(nil, user)
	require.NoError(t, err)
	return v.Name
}
