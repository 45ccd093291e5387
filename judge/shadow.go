package judge

import (
	"math"
	"sync"
	"time"
)

// ShadowWindow is the number of compared pairs in one tumbling window of a
// Shadow.
const ShadowWindow = 1000

// Pair is one request answered by the primary and by a shadow: each side's
// status, latency and per-row predictions (Reduce of each decoded row;
// empty when the answer had none or failed).
type Pair struct {
	PrimaryStatus, ShadowStatus   int
	PrimaryLatency, ShadowLatency time.Duration
	Primary, Shadow               []Value
}

// Diff buckets: geometric, four per doubling, from 1e-9 to about 1e9; the
// first bucket holds exact zeros (and anything below 1e-9).
const (
	diffBase      = 1e-9
	diffPerOctave = 4
	diffBuckets   = 60*diffPerOctave + 2
)

func diffBucket(d float64) int {
	if !(d >= diffBase) {
		return 0
	}
	return min(1+int(diffPerOctave*math.Log2(d/diffBase)), diffBuckets-1)
}

// diffUpper is the upper bound of diff bucket i.
func diffUpper(i int) float64 {
	if i == 0 {
		return 0
	}
	return diffBase * math.Exp2(float64(i)/diffPerOctave)
}

// shadowCounts are the sums over a set of pairs.
type shadowCounts struct {
	pairs                        int64
	primaryErrors, shadowErrors  int64
	rows, agree                  int64 // class-like rows compared, and agreeing
	numeric                      int64 // numeric rows compared
	sumAbs, sumRel               float64
	absHist                      [diffBuckets]int64
	timed                        int64 // pairs where both answered
	primarySeconds, shadowSecond float64
}

// Outcome is what one Pair added: its class-like rows and how many agree,
// and its numeric rows' absolute differences; and, after it, the Shadow's
// cumulative agreement (0 while no class-like row has been compared).
type Outcome struct {
	Rows, Agree int
	AbsDiffs    []float64
	Agreement   float64
}

func (c *shadowCounts) add(p *Pair, out *Outcome) {
	c.pairs++
	pe, se := IsError(p.PrimaryStatus), IsError(p.ShadowStatus)
	if pe {
		c.primaryErrors++
	}
	if se {
		c.shadowErrors++
	}
	if !pe && !se {
		c.timed++
		c.primarySeconds += p.PrimaryLatency.Seconds()
		c.shadowSecond += p.ShadowLatency.Seconds()
	}
	c.rows += int64(out.Rows)
	c.agree += int64(out.Agree)
	for _, d := range out.AbsDiffs {
		c.numeric++
		c.sumAbs += d
		c.absHist[diffBucket(d)]++
	}
}

// compare scores a pair row by row (up to the shorter side).
func compare(p *Pair, out *Outcome) {
	n := min(len(p.Primary), len(p.Shadow))
	for i := range n {
		a, b := p.Primary[i], p.Shadow[i]
		if Numeric(a, b) {
			out.AbsDiffs = append(out.AbsDiffs, math.Abs(a.Num-b.Num))
			continue
		}
		out.Rows++
		if a.Key() == b.Key() {
			out.Agree++
		}
	}
}

// relDiff is |a-b| / max(|a|, 1e-12): the difference relative to the
// primary's prediction.
func relDiff(a, b float64) float64 { return math.Abs(a-b) / math.Max(math.Abs(a), 1e-12) }

// Shadow accumulates the comparisons of one shadow version with the
// primary, cumulatively and over tumbling windows of ShadowWindow pairs.
// It is safe for concurrent use.
type Shadow struct {
	mu        sync.Mutex // guards the counts below
	cum       shadowCounts
	cur, last shadowCounts
	closed    int64 // windows closed
}

// Add compares a pair and counts it. It returns what the pair added, for
// the caller's metrics.
func (s *Shadow) Add(p Pair) Outcome {
	var out Outcome
	compare(&p, &out)
	var rel float64
	n := min(len(p.Primary), len(p.Shadow))
	for i := range n {
		if Numeric(p.Primary[i], p.Shadow[i]) {
			rel += relDiff(p.Primary[i].Num, p.Shadow[i].Num)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cum.add(&p, &out)
	s.cum.sumRel += rel
	s.cur.add(&p, &out)
	s.cur.sumRel += rel
	if s.cur.pairs >= ShadowWindow {
		s.last, s.cur = s.cur, shadowCounts{}
		s.closed++
	}
	if s.cum.rows > 0 {
		out.Agreement = float64(s.cum.agree) / float64(s.cum.rows)
	}
	return out
}

// ShadowFigures summarise a set of pairs.
type ShadowFigures struct {
	Pairs int64 `json:"pairs"`
	// Rows is the number of class-like rows compared; Agreement the share
	// that agree, with its 95 % Wilson interval.
	Rows          int64   `json:"rows"`
	Agreement     float64 `json:"agreement"`
	AgreementLow  float64 `json:"agreement_low"`
	AgreementHigh float64 `json:"agreement_high"`
	// NumericRows is the number of numeric rows compared; the mean and
	// 95th percentile (to within 19 %) of their absolute differences, and
	// the mean difference relative to the primary's value.
	NumericRows int64   `json:"numeric_rows"`
	MeanAbsDiff float64 `json:"mean_abs_diff"`
	P95AbsDiff  float64 `json:"p95_abs_diff"`
	MeanRelDiff float64 `json:"mean_rel_diff"`
	// LatencyRatio is the shadow's mean latency over the primary's, over
	// pairs both answered without error; 0 when there are none.
	LatencyRatio float64 `json:"latency_ratio"`
	// PrimaryErrorRate and ShadowErrorRate are the shares of pairs whose
	// side answered an error (see IsError).
	PrimaryErrorRate float64 `json:"primary_error_rate"`
	ShadowErrorRate  float64 `json:"shadow_error_rate"`
}

func (c *shadowCounts) figures() ShadowFigures {
	f := ShadowFigures{Pairs: c.pairs, Rows: c.rows, NumericRows: c.numeric}
	f.AgreementLow, f.AgreementHigh = Wilson(c.agree, c.rows)
	if c.rows > 0 {
		f.Agreement = float64(c.agree) / float64(c.rows)
	}
	if c.numeric > 0 {
		f.MeanAbsDiff = c.sumAbs / float64(c.numeric)
		f.MeanRelDiff = c.sumRel / float64(c.numeric)
		rank := int64(math.Ceil(0.95 * float64(c.numeric)))
		var seen int64
		for i, n := range c.absHist {
			if seen += n; seen >= rank {
				f.P95AbsDiff = diffUpper(i)
				break
			}
		}
	}
	if c.timed > 0 && c.primarySeconds > 0 {
		f.LatencyRatio = c.shadowSecond / c.primarySeconds
	}
	if c.pairs > 0 {
		f.PrimaryErrorRate = float64(c.primaryErrors) / float64(c.pairs)
		f.ShadowErrorRate = float64(c.shadowErrors) / float64(c.pairs)
	}
	return f
}

// ShadowReport is a Shadow's figures since it started and over its last
// closed window (the open one until a window has closed).
type ShadowReport struct {
	Cumulative    ShadowFigures `json:"cumulative"`
	Window        ShadowFigures `json:"window"`
	WindowsClosed int64         `json:"windows_closed"`
}

// Report returns the figures.
func (s *Shadow) Report() ShadowReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := ShadowReport{Cumulative: s.cum.figures(), WindowsClosed: s.closed}
	if s.closed > 0 {
		r.Window = s.last.figures()
	} else {
		r.Window = s.cur.figures()
	}
	return r
}
