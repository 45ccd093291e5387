package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"time"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/monitor/stats"
)

// Bounds that keep a payload from growing the monitor's memory or the
// metrics' label sets.
const (
	// MaxFeatures is the most features tracked per version: the configured
	// ones first (at most configs.MaxMonitorFeatures, which validation
	// enforces, so every configured feature is monitored), then
	// predictions and other names in the order first seen. Values of
	// further names are ignored and counted.
	MaxFeatures = 2 * configs.MaxMonitorFeatures
	// maxFeatureName bounds a feature name's length in bytes; longer names
	// are ignored and counted like names beyond MaxFeatures.
	maxFeatureName = 128
	// maxCategories bounds the distinct categories kept per categorical
	// feature, in a reference and in a window; further categories are
	// counted together as OtherCategory.
	maxCategories = 256
)

// OtherCategory collects the categories of a feature beyond the 255 kept.
const OtherCategory = "__other__"

// kind is what a feature's values are, fixed by the first value seen.
type kind uint8

const (
	kindUnknown kind = iota
	kindNumeric
	kindCategorical
)

func (k kind) String() string {
	return [...]string{"", "numeric", "categorical"}[k]
}

// featureRef is one feature of a reference. It is immutable once built,
// so references are shared between versions and goroutines freely.
type featureRef struct {
	kind kind
	n    int // numeric: values; categorical: total count (rounded)

	values []float64 // numeric: sorted ascending
	bins   int       // numeric: the bin count edges were frozen for
	edges  []float64 // numeric: frozen quantile edges; ties leave fewer than bins-1
	props  []float64 // numeric: the reference's proportion in each bin

	cats   []string  // categorical: sorted
	counts []float64 // categorical: count of each of cats

	// mom are the exact moments of every numeric value profiled, which
	// may be more than values keeps (a warmup keeps a reservoir sample).
	mom stats.Moments
	// levels are a discrete numeric feature's distinct values, sorted,
	// with levelCounts their counts over every value profiled; nil when
	// the feature has more than maxLevels distinct values.
	levels      []float64
	levelCounts []float64
}

// maxLevels is the most distinct values a numeric feature may have to be
// treated as discrete (0/1 predictions, small integers): its sequential
// detector then runs a chi-square on the value counts rather than a
// scale statistic.
const maxLevels = 16

// refProfile is a reference: what a version's windows are compared with.
// Immutable once built.
type refProfile struct {
	source   string // warmup, file, version
	origin   string // the file read, or the version whose window it is
	rows     int
	created  time.Time // when a learned reference was frozen; zero for others
	features map[string]*featureRef
	names    []string // features in the order they were added
}

// numericRef builds a numeric reference from sorted values (kept, not
// copied) and freezes bins quantile bins.
func numericRef(sorted []float64, bins int) *featureRef {
	var mom stats.Moments
	for _, x := range sorted {
		mom.Add(x)
	}
	levels, counts := levelsOf(sorted)
	return numericRefOf(sorted, bins, mom, levels, counts)
}

// levelsOf returns the distinct values of sorted with their counts, or
// nil when there are more than maxLevels.
func levelsOf(sorted []float64) (levels, counts []float64) {
	for i, x := range sorted {
		if i == 0 || x != sorted[i-1] {
			if len(levels) == maxLevels {
				return nil, nil
			}
			levels = append(levels, x)
			counts = append(counts, 0)
		}
		counts[len(counts)-1]++
	}
	return levels, counts
}

// numericRefOf builds a numeric reference from a sorted sample (kept,
// not copied), the moments and levels of every value profiled.
func numericRefOf(sorted []float64, bins int, mom stats.Moments, levels, levelCounts []float64) *featureRef {
	f := &featureRef{kind: kindNumeric, n: int(mom.N), values: sorted, bins: bins,
		mom: mom, levels: levels, levelCounts: levelCounts}
	f.edges = stats.Edges(sorted, bins)
	counts := make([]float64, len(f.edges)+1)
	for _, x := range sorted {
		counts[stats.BinIndex(f.edges, x)]++
	}
	f.props = stats.Proportions(counts)
	return f
}

// categoricalRef builds a categorical reference from counts.
func categoricalRef(counts map[string]float64) *featureRef {
	f := &featureRef{kind: kindCategorical, cats: make([]string, 0, len(counts))}
	for c := range counts {
		f.cats = append(f.cats, c)
	}
	sort.Strings(f.cats)
	f.counts = make([]float64, len(f.cats))
	total := 0.0
	for i, c := range f.cats {
		f.counts[i] = counts[c]
		total += counts[c]
	}
	f.n = int(total + 0.5)
	return f
}

// withBins returns the reference with its numeric bins frozen anew at
// bins, or ref itself when they already are.
func (r *refProfile) withBins(bins int) *refProfile {
	if r == nil {
		return nil
	}
	same := true
	for _, f := range r.features {
		if f.kind == kindNumeric && f.bins != bins {
			same = false
			break
		}
	}
	if same {
		return r
	}
	c := *r
	c.features = make(map[string]*featureRef, len(r.features))
	for name, f := range r.features {
		if f.kind == kindNumeric {
			f = numericRefOf(f.values, bins, f.mom, f.levels, f.levelCounts)
		}
		c.features[name] = f
	}
	return &c
}

// statePath is where a version's learned reference persists, or "" when
// nothing persists (no state_dir, or names unfit for a path).
func statePath(stateDir, model, version string) string {
	if stateDir == "" || !pathSafe(model) || !pathSafe(version) {
		return ""
	}
	return filepath.Join(stateDir, "references", model, version+".json")
}

// pathSafe reports whether name is one plain path element. Config
// validation admits only [a-z0-9][a-z0-9._-]*; this guards configs built
// in code.
func pathSafe(name string) bool {
	return name != "" && name != "." && name != ".." && filepath.Base(name) == name &&
		filepath.Clean(name) == name
}

// loadState reads a learned reference from path. It returns nil and no
// error when there is none; an error when the file exists but cannot be
// used (the caller logs it and learns anew).
func loadState(path, model, version string, warmup, bins int) (*refProfile, error) {
	p, _, err := readProfile(path, max(warmup, MaxProfileValues))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if p.Model != model || p.Version != version {
		return nil, fmt.Errorf("profile is of %s/%s", p.Model, p.Version)
	}
	if p.Warmup != warmup {
		return nil, fmt.Errorf("profile was learned with warmup %d, the config says %d", p.Warmup, warmup)
	}
	ref, _ := p.reference(refWarmup.String(), path, nil, bins)
	if p.CreatedAt != nil {
		ref.created = *p.CreatedAt
	}
	return ref, nil
}

// saveState writes a learned reference to path atomically.
func saveState(path string, p *profileFile) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data)
}
