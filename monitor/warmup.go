package monitor

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/vaneproxy/vane/monitor/stats"
)

// ReferenceSample is the most numeric values a learned reference keeps
// per feature: a uniform reservoir sample of the warmup's values, from
// which the quantile bin edges are frozen and ks and wasserstein are
// computed. The mean, variance and kurtosis the sequential detector uses
// are exact over every warmup value (running moments), and a discrete
// feature's value counts are exact too, so a warmup of 10,000 or 100,000
// rows costs the memory of ReferenceSample values per feature. The
// sample's quantiles are off by at most a rank error of about
// √(q(1−q)/ReferenceSample) — 1.6 percentage points at the median — one
// standard deviation.
const ReferenceSample = 1000

// splitHalfLevel is the false-refusal probability of the split-half test
// that keeps a warmup which drifts within itself from becoming the
// reference (Bonferroni over the features and statistics tested).
const splitHalfLevel = 1e-3

// learner is one feature's reference being learned from the warmup.
type learner struct {
	sample     []float64              // numeric: reservoir of the values
	seen       int                    // numeric: values offered to the reservoir
	half       [2]stats.Moments       // numeric: moments of the first and second half of the warmup
	levels     [2]map[float64]float64 // numeric: counts of each distinct value per half; nil once continuous
	nLevels    int                    // numeric: distinct values counted
	continuous bool                   // numeric: more than maxLevels distinct values
	cats       [2]map[string]float64  // categorical: counts per half
}

// rngFor is the reservoir's random source of one version: seeded by its
// names, so a replay of the same rows learns the same reference.
func rngFor(model, version string) *rand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(model + "\x00" + version))
	return rand.New(rand.NewPCG(h.Sum64(), 0x76616e65))
}

// half is the warmup half the current row falls in.
func (v *versionState) half() int {
	if v.refRows*2 >= v.set.warmup {
		return 1
	}
	return 0
}

// learnNumeric takes one warmup value of f.
func (v *versionState) learnNumeric(f *feature, x float64) {
	l := f.learnerOf()
	h := v.half()
	l.half[h].Add(x)
	l.countLevel(h, x)
	l.seen++
	if len(l.sample) < ReferenceSample {
		l.sample = append(l.sample, x)
	} else if j := v.rng.IntN(l.seen); j < ReferenceSample {
		l.sample[j] = x
	}
}

// countLevel counts x in half h while the feature has at most maxLevels
// distinct values, and stops counting when it has more.
func (l *learner) countLevel(h int, x float64) {
	if l.continuous {
		return
	}
	if l.levels[0] == nil {
		l.levels = [2]map[float64]float64{{}, {}}
	}
	_, in0 := l.levels[0][x]
	_, in1 := l.levels[1][x]
	if !in0 && !in1 {
		if l.nLevels == maxLevels {
			l.levels, l.continuous = [2]map[float64]float64{}, true
			return
		}
		l.nLevels++
	}
	l.levels[h][x]++
}

// learnCategory takes one warmup category of f.
func (v *versionState) learnCategory(f *feature, c string) {
	l := f.learnerOf()
	h := v.half()
	l.cats[h] = addCategory(l.cats[h], c)
}

func (f *feature) learnerOf() *learner {
	if f.learn == nil {
		f.learn = &learner{}
	}
	return f.learn
}

// reference builds the feature's reference from what it learned; nil when
// it saw no value.
func (l *learner) reference(k kind, bins int) *featureRef {
	switch k {
	case kindNumeric:
		if l.seen == 0 {
			return nil
		}
		mom := l.half[0]
		mom.Merge(l.half[1])
		var levels, counts []float64
		if !l.continuous {
			all := map[float64]float64{}
			for _, m := range l.levels {
				for x, c := range m {
					all[x] += c
				}
			}
			for x := range all {
				levels = append(levels, x)
			}
			sort.Float64s(levels)
			for _, x := range levels {
				counts = append(counts, all[x])
			}
		}
		sort.Float64s(l.sample)
		return numericRefOf(l.sample, bins, mom, levels, counts)
	case kindCategorical:
		all := map[string]float64{}
		for _, m := range l.cats {
			for c, n := range m {
				all[c] += n
			}
		}
		if len(all) == 0 {
			return nil
		}
		return categoricalRef(foldCategories(all))
	}
	return nil
}

// splitHalf tests whether the warmup's second half looks like its first:
// per numeric feature the difference of means and the log ratio of
// variances (or, for a discrete one, a chi-square of the value counts),
// per categorical feature a chi-square of the counts. It returns a reason
// to refuse the warmup as a reference, or "" when nothing drifted: the
// smallest p-value times the number of tests (Bonferroni) below
// splitHalfLevel. Halves of fewer than 20 values are not tested.
func (v *versionState) splitHalf() string {
	type result struct {
		feature, test string
		p             float64
	}
	var worst result
	worst.p = 2
	tests := 0
	note := func(feature, test string, p float64) {
		tests++
		if p < worst.p {
			worst = result{feature, test, p}
		}
	}
	for _, f := range v.features {
		l := f.learn
		if l == nil {
			continue
		}
		switch f.kind {
		case kindNumeric:
			a, b := l.half[0], l.half[1]
			if a.N < 20 || b.N < 20 {
				continue
			}
			if !l.continuous {
				ra, rb := countTable(l.levels)
				_, p, _ := stats.Pearson(ra, rb)
				note(f.name, "chi2 of the value counts", p)
				continue
			}
			pooled := (a.M2 + b.M2) / (a.N + b.N - 2)
			if pooled > 0 {
				z := (b.Mean - a.Mean) / math.Sqrt(pooled*(1/a.N+1/b.N))
				note(f.name, "mean", 2*stats.NormalSF(math.Abs(z)))
			}
			va, vb := a.Variance(), b.Variance()
			if va > 0 && vb > 0 {
				all := a
				all.Merge(b)
				kurt := math.Max(all.Kurtosis(), 1.5)
				z := math.Log(vb/va) / math.Sqrt((kurt-1)*(1/a.N+1/b.N))
				note(f.name, "variance", 2*stats.NormalSF(math.Abs(z)))
			}
		case kindCategorical:
			ra, rb := countTable(l.cats)
			if sum(ra) < 20 || sum(rb) < 20 {
				continue
			}
			_, p, _ := stats.Pearson(ra, rb)
			note(f.name, "chi2", p)
		}
	}
	if tests == 0 || worst.p*float64(tests) >= splitHalfLevel {
		return ""
	}
	return fmt.Sprintf("feature %q: %s differs between the warmup's halves (p=%.3g, %d tests)",
		worst.feature, worst.test, worst.p, tests)
}

// countTable lays two halves' counts out as two rows over the same keys
// (values or categories), in ascending key order.
func countTable[K cmp.Ordered](m [2]map[K]float64) (a, b []float64) {
	seen := map[K]bool{}
	var ks []K
	for _, h := range m {
		for k := range h {
			if !seen[k] {
				seen[k] = true
				ks = append(ks, k)
			}
		}
	}
	slices.Sort(ks)
	for _, k := range ks {
		a, b = append(a, m[0][k]), append(b, m[1][k])
	}
	return a, b
}

func sum(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}

// freeze makes the rows learned so far the reference, unless the
// split-half test finds that the warmup drifted within itself: then the
// warmup is refused (logged, counted) and learned again from the next
// rows.
func (v *versionState) freeze(now time.Time) *persistJob {
	if reason := v.splitHalf(); reason != "" {
		v.refusals++
		v.refusedWhy = reason
		v.log.Warn("drift reference refused: the warmup drifts within itself; learning again from the next rows",
			"rows", v.refRows, "reason", reason, "refusals", v.refusals)
		for _, f := range v.features {
			f.learn = nil
		}
		v.refRows = 0
		v.met.referenceRows.Set(0)
		return nil
	}
	ref := &refProfile{source: refWarmup.String(), rows: v.refRows, created: now.UTC(),
		features: map[string]*featureRef{}}
	for _, f := range v.features {
		if f.learn == nil {
			continue
		}
		fr := f.learn.reference(f.kind, v.set.bins)
		f.learn = nil
		if fr == nil {
			continue
		}
		ref.features[f.name] = fr
		ref.names = append(ref.names, f.name)
	}
	v.ref = ref
	v.met.referenceReady.Set(1)
	v.log.Info("drift reference learned", "rows", ref.rows, "features", len(ref.features))
	return v.persistJob(now)
}
