package monitor

import (
	"fmt"

	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/monitor/decode"
)

// TestDriftEval is the drift detection harness (make drift-eval): it runs
// simulated traffic through the monitor's real code — a config parsed
// with the defaults, Configure, the version state's apply, window closes
// and the alert decisions — and prints the table docs/drift.md shows.
// It is skipped unless VANE_DRIFT_EVAL=1: it takes minutes.
//
// Each run learns a fresh reference from warmup rows (so the reference's
// own sampling error varies between runs, as between deployments), then
// feeds windows. Null cells count alerts raised per 1000 windows per
// version; shift cells start the change at the first window after the
// warmup and record the window at which any alert of the version is
// raised. VANE_DRIFT_EVAL_RUNS sets the runs per shift cell (default 400)
// and VANE_DRIFT_EVAL_NULL the null windows per cell (default 20000 for
// 5 features, a quarter for 64).
func TestDriftEval(t *testing.T) {
	if os.Getenv("VANE_DRIFT_EVAL") == "" {
		t.Skip("the drift harness runs with VANE_DRIFT_EVAL=1 (make drift-eval)")
	}
	runs := envInt("VANE_DRIFT_EVAL_RUNS", 400)
	nullWindows := envInt("VANE_DRIFT_EVAL_NULL", 20000)
	extra := os.Getenv("VANE_DRIFT_EVAL_CONFIG") // extra monitor keys, e.g. "detector: window"
	var out strings.Builder
	fmt.Fprintf(&out, "monitor defaults%s; %d runs per shift cell\n\n", orNone(extra), runs)
	out.WriteString("| features | change | false alerts per 1000 windows | within 1 | within 2 | within 5 | within 10 |\n")
	out.WriteString("|---|---|---|---|---|---|---|\n")
	for _, nf := range []int{5, 64} {
		nw := nullWindows
		if nf > 5 {
			nw /= 4
		}
		for _, sc := range evalScenarios {
			start := time.Now()
			h := newHarness(t, nf, sc, extra)
			if sc.null {
				rate := h.nullRate(nw)
				fmt.Fprintf(&out, "| %d | %s | %.2f (%d windows) | | | | |\n", nf, sc.name, rate*1000, nw)
			} else {
				w := h.detection(runs, 10)
				fmt.Fprintf(&out, "| %d | %s | | %s | %s | %s | %s |\n", nf, sc.name,
					pct(w, 1), pct(w, 2), pct(w, 5), pct(w, 10))
			}
			t.Logf("%d features, %s: %s", nf, sc.name, time.Since(start).Round(time.Second))
		}
	}
	out.WriteString("\nDrift that starts during the warmup (5 numeric features, feature 0 shifts by 0.5σ from warmup row R on):\n\n")
	out.WriteString("| R (of 10,000) | warmup refused | alerted within 10 windows after the warmup | caught (either) |\n|---|---|---|---|\n")
	for _, at := range []int{200, 2000, 5000, 9000} {
		h := newHarness(t, 5, evalScenarios[1], extra)
		refused, alerted, caught := 0, 0, 0
		n := max(runs/4, 10)
		for range n {
			r, a := h.warmupDrift(at, 0.5)
			if r {
				refused++
			}
			if a {
				alerted++
			}
			if r || a {
				caught++
			}
		}
		fmt.Fprintf(&out, "| %d | %.1f %% | %.1f %% | %.1f %% |\n", at,
			100*float64(refused)/float64(n), 100*float64(alerted)/float64(n), 100*float64(caught)/float64(n))
	}
	t.Log("\n" + out.String())
	fmt.Println(out.String())
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func orNone(extra string) string {
	if extra == "" {
		return ""
	}
	return " with " + extra
}

// pct is the share of runs detected within w windows.
func pct(detectedAt []int, w int) string {
	n := 0
	for _, d := range detectedAt {
		if d > 0 && d <= w {
			n++
		}
	}
	return fmt.Sprintf("%.1f %%", 100*float64(n)/float64(len(detectedAt)))
}

// scenario is one harness cell: the layout of feature 0 and the change
// applied to it after the warmup.
type scenario struct {
	name string
	null bool
	// first is feature 0's kind: "num" (N(0,1)), "cat" (a/b/c at
	// .5/.3/.2) or "bin" (0/1 at .3).
	first string
	shift func(rng *rand.Rand) decode.Value // feature 0 after the change
}

var evalScenarios = []scenario{
	{name: "none (numeric)", null: true, first: "num"},
	{name: "mean +0.1σ", first: "num", shift: func(r *rand.Rand) decode.Value { return num(r.NormFloat64() + 0.1) }},
	{name: "mean +0.2σ", first: "num", shift: func(r *rand.Rand) decode.Value { return num(r.NormFloat64() + 0.2) }},
	{name: "σ 1 → 1.2", first: "num", shift: func(r *rand.Rand) decode.Value { return num(1.2 * r.NormFloat64()) }},
	{name: "none (feature 0 categorical)", null: true, first: "cat"},
	{name: "categories .5/.3/.2 → .45/.35/.2", first: "cat", shift: func(r *rand.Rand) decode.Value { return category(r, 0.45, 0.35) }},
	{name: "none (feature 0 is 0/1)", null: true, first: "bin"},
	{name: "0/1 share .30 → .35", first: "bin", shift: func(r *rand.Rand) decode.Value { return binary(r, 0.35) }},
}

func num(x float64) decode.Value { return decode.Value{Num: x} }

var cats = [3]string{"a", "b", "c"}

func category(r *rand.Rand, pa, pb float64) decode.Value {
	u := r.Float64()
	i := 2
	switch {
	case u < pa:
		i = 0
	case u < pa+pb:
		i = 1
	}
	return decode.Value{Cat: cats[i], IsCat: true}
}

func binary(r *rand.Rand, p float64) decode.Value {
	if r.Float64() < p {
		return num(1)
	}
	return num(0)
}

// harness drives one version of a monitor configured with the defaults.
type harness struct {
	t     *testing.T
	nf    int
	sc    scenario
	cfg   *configs.Config
	names []string
	rng   *rand.Rand
	seed  uint64
}

func newHarness(t *testing.T, nf int, sc scenario, extra string) *harness {
	names := make([]string, nf)
	for i := range names {
		names[i] = "f" + strconv.Itoa(i)
	}
	yaml := fmt.Sprintf(`models:
  - name: m
    protocol: kserve-v1
    match: {path_prefix: /m}
    versions:
      - name: v1
        endpoints: ["http://127.0.0.1:1"]
    monitor:
      features: [%s]
      max_age: 0s
`, strings.Join(names, ", "))
	if extra != "" {
		yaml += "      " + extra + "\n"
	}
	cfg, err := configs.Parse([]byte(yaml))
	require.NoError(t, err)
	return &harness{t: t, nf: nf, sc: sc, cfg: cfg, names: names,
		rng: rand.New(rand.NewPCG(uint64(nf), uint64(len(sc.name))))}
}

// fresh returns a newly configured version state (a new deployment).
func (h *harness) fresh() *versionState {
	m, err := New(Options{})
	require.NoError(h.t, err)
	require.NoError(h.t, m.Configure(h.cfg))
	return m.snap.Load().models["m"].versions["v1"]
}

// rows fills batch with rows; shifted rows take feature 0 from the
// scenario's change.
func (h *harness) rows(batch []decode.Row, shifted bool) {
	for i := range batch {
		fs := batch[i].Features[:0]
		for j, name := range h.names {
			var val decode.Value
			switch {
			case j == 0 && shifted:
				val = h.sc.shift(h.rng)
			case j == 0 && h.sc.first == "cat":
				val = category(h.rng, 0.5, 0.3)
			case j == 0 && h.sc.first == "bin":
				val = binary(h.rng, 0.3)
			default:
				val = num(h.rng.NormFloat64())
			}
			fs = append(fs, decode.Field{Name: name, Value: val})
		}
		batch[i].Features = fs
	}
}

// feed applies n rows (shifted or not) and returns the windows that
// raised an alert.
func (h *harness) feed(v *versionState, n int, shifted bool, now time.Time) []int {
	batch := make([]decode.Row, 100)
	for i := range batch {
		batch[i].Features = make([]decode.Field, 0, h.nf)
	}
	var raised []int
	for n > 0 {
		b := batch[:min(n, len(batch))]
		h.rows(b, shifted)
		ev, _ := v.ingest(b, now, nil)
		for _, e := range ev {
			if e.firing && !e.resend {
				raised = append(raised, e.window)
			}
		}
		n -= len(b)
	}
	return raised
}

// warm configures a fresh version and feeds its warmup.
func (h *harness) warm() *versionState {
	v := h.fresh()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for v.learning() {
		h.feed(v, v.set.warmup, false, now)
	}
	return v
}

// nullRate is the alerts raised per window over about total windows
// without any change, in runs of 200 windows each on a fresh reference:
// the rate depends much on the reference's own error, so the average
// needs many references.
func (h *harness) nullRate(total int) float64 {
	per := min(200, total)
	alerts, windows := 0, 0
	for windows < total {
		v := h.warm()
		alerts += len(h.feed(v, per*v.set.window, false, time.Time{}))
		windows += per
	}
	return float64(alerts) / float64(windows)
}

// warmupDrift starts a shift of feature 0 at warmup row at and reports
// whether the first warmup was refused and whether an alert was raised
// within 10 windows after the reference was frozen.
func (h *harness) warmupDrift(at int, shift float64) (refused, alerted bool) {
	v := h.fresh()
	sc := h.sc
	h.sc.shift = func(r *rand.Rand) decode.Value { return num(r.NormFloat64() + shift) }
	defer func() { h.sc = sc }()
	h.feed(v, at, false, time.Time{})
	for v.learning() {
		h.feed(v, 100, true, time.Time{})
	}
	refused = v.refusals > 0
	for range 10 {
		if len(h.feed(v, v.set.window, true, time.Time{})) > 0 {
			return refused, true
		}
	}
	return refused, false
}

// detection returns, per run, the first window (1-based, counted from
// the change) at which an alert was raised, 0 for none within max.
func (h *harness) detection(runs, max int) []int {
	at := make([]int, runs)
	for r := range at {
		v := h.warm()
		for w := 1; w <= max; w++ {
			if len(h.feed(v, v.set.window, true, time.Time{})) > 0 {
				at[r] = w
				break
			}
		}
	}
	return at
}
