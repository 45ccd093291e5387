package health

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seriesOf lists the health series that name url.
func seriesOf(t *testing.T, f *fixture, url string) []string {
	t.Helper()
	families, err := f.reg.Gather()
	require.NoError(t, err)
	var out []string
	for _, fam := range families {
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" && l.GetValue() == url {
					out = append(out, fam.GetName())
				}
			}
		}
	}
	return out
}

// A prepared endpoint set changes nothing until it is committed: a new
// endpoint is neither probed nor published, a surviving one keeps its
// breaker config; dropping the plan leaves nothing behind. Commit then
// applies it, with the handles the plan gave out.
func TestPrepareChangesNothingUntilCommit(t *testing.T) {
	a, b := newBackend(t, http.StatusOK), newBackend(t, http.StatusOK)
	f := newFixture(t)
	ta := httpTarget(a, "v1", fastHealth(1, 1))
	ta.Breaker.OpenFor = time.Hour
	f.Update([]Target{ta})
	f.run(t)
	f.waitRoutable(t, ta.Key, true)
	before := f.Breaker(ta.Key)

	// The change: a's breaker opens at 2 failures instead of 4, b joins.
	ta2 := ta
	ta2.Breaker.MinRequests = 2
	tb := httpTarget(b, "v2", fastHealth(1, 1))
	plan := f.Prepare([]Target{ta2, tb})
	assert.Same(t, before, plan.Breaker(ta.Key), "a surviving key keeps its breaker handle")
	assert.True(t, plan.Routable(ta.Key))
	assert.NotNil(t, plan.Breaker(tb.Key))
	assert.False(t, plan.Routable(tb.Key), "a new key starts not routable")

	assert.Nil(t, f.Breaker(tb.Key), "the Checker does not know b before Commit")
	assert.False(t, f.Routable(tb.Key))
	assert.Empty(t, seriesOf(t, f, b.URL), "no series of b before Commit")
	assert.Zero(t, b.probes.Load(), "b is not probed before Commit")
	for range 2 {
		before.Record(0, errors.New("connection refused"))
	}
	assert.Equal(t, "closed", f.BreakerState(ta.Key), "a's breaker still opens at 4 failures")
	f.Reset("", "", "")

	plan.Commit()
	assert.Same(t, plan.Breaker(tb.Key), f.Breaker(tb.Key))
	assert.NotEmpty(t, seriesOf(t, f, b.URL))
	f.waitRoutable(t, tb.Key, true)
	assert.Positive(t, b.probes.Load())
	for range 2 {
		before.Record(0, errors.New("connection refused"))
	}
	assert.Equal(t, "open", f.BreakerState(ta.Key), "the committed config opens a's breaker at 2 failures")

	// A plan that drops b, never committed, leaves b watched.
	_ = f.Prepare([]Target{ta2})
	assert.NotNil(t, f.Breaker(tb.Key))
	assert.True(t, strings.Contains(strings.Join(seriesOf(t, f, b.URL), " "), "vane_endpoint_healthy"))
}
