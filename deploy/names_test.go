package deploy

import (
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/proxy"
)

// recorder is a Registerer that notes the name of every metric registered
// through it, series or not (drift metrics exist before any window closes).
type recorder struct {
	prometheus.Registerer
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// vaneMetrics returns the names of the metrics a vane serving the demo
// config registers (the vane_* ones; the Go and process collectors are
// not vane's).
func vaneMetrics(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := configs.Example("demo")
	require.NoError(t, err)
	cfg, err := configs.Parse(raw)
	require.NoError(t, err)
	rec := &recorder{Registerer: prometheus.NewRegistry(), names: map[string]bool{}}
	_, err = proxy.New(cfg, raw, proxy.Options{Registerer: rec})
	require.NoError(t, err)
	require.True(t, rec.names["vane_requests_total"], "the recorder saw vane's metrics")
	return rec.names
}

// metricRef matches a vane metric name in a PromQL expression; recording
// rules (vane:...) do not match.
var metricRef = regexp.MustCompile(`\bvane_[a-z0-9_]+\b`)

// unknownMetrics lists the vane metric names expr uses that known lacks,
// accepting the _bucket, _sum and _count series of histograms.
func unknownMetrics(expr string, known map[string]bool) []string {
	var bad []string
	for _, name := range metricRef.FindAllString(expr, -1) {
		base := name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suf); ok && known[b] {
				base = b
			}
		}
		if !known[base] {
			bad = append(bad, name)
		}
	}
	return bad
}
