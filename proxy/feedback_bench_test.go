package proxy

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/monitor/decode"
)

// onPredictionSetup is a comparison with a full feedback store, request ids
// that are each new to it, and the rows of one iris answer.
func onPredictionSetup(tb testing.TB, entries int) (*comparison, []string, []decode.Row) {
	tb.Helper()
	cfg := &configs.Config{Feedback: configs.Feedback{MaxEntries: entries, TTL: time.Hour}}
	c, err := newComparison(cfg, prometheus.NewRegistry(), time.Now)
	require.NoError(tb, err)
	ids := make([]string, 2*entries)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i)
	}
	rows := []decode.Row{{Predictions: []decode.Field{{Name: "prediction", Value: decode.Value{Num: 1}}}}}
	for _, id := range ids[:entries] {
		c.onPrediction("iris", "v1", id, rows)
	}
	return c, ids, rows
}

// BenchmarkOnPrediction is what the drift monitor's worker pays per
// sampled request to keep its prediction for POST /feedback.
func BenchmarkOnPrediction(b *testing.B) {
	c, ids, rows := onPredictionSetup(b, 1<<14)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c.onPrediction("iris", "v1", ids[i%len(ids)], rows)
	}
}

// TestOnPredictionAllocations: keeping a sampled request's prediction
// (one row, vane's own request id) allocates nothing.
func TestOnPredictionAllocations(t *testing.T) {
	c, ids, rows := onPredictionSetup(t, 64)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		c.onPrediction("iris", "v1", ids[i%len(ids)], rows)
		i++
	})
	assert.Zero(t, allocs)
}
