package monitor

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/monitor/stats"
)

// ProfileFormat is the format tag of a reference profile file, the JSON
// document that monitor.reference.file names and that vane writes under
// state_dir for learned references:
//
//	{"format": "vane-reference/v1",
//	 "rows": 1000,                          // optional: observations profiled
//	 "features": {
//	   "x": {"kind": "numeric", "values": [0.1, 2.5, ...]},
//	   "c": {"kind": "categorical", "counts": {"red": 310, "blue": 690}}}}
//
// vane adds model, version, source, warmup and created_at when it writes
// one. Unknown fields are errors. Numeric values are the raw sample (any
// order); files with more than MaxProfileValues values per feature are
// reduced to that many by a deterministic reservoir sample. Counts are
// finite and >= 0 with a positive total.
const ProfileFormat = "vane-reference/v1"

// MaxProfileValues bounds the numeric values kept per feature of a
// reference profile file.
const MaxProfileValues = 100_000

// profileFile is the JSON document of ProfileFormat.
type profileFile struct {
	Format    string                    `json:"format"`
	Model     string                    `json:"model,omitempty"`
	Version   string                    `json:"version,omitempty"`
	Source    string                    `json:"source,omitempty"`
	Warmup    int                       `json:"warmup,omitempty"`
	Rows      int                       `json:"rows,omitempty"`
	CreatedAt *time.Time                `json:"created_at,omitempty"`
	Features  map[string]profileFeature `json:"features"`
}

type profileFeature struct {
	Kind   string             `json:"kind"`
	Values []float64          `json:"values,omitempty"`
	Counts map[string]float64 `json:"counts,omitempty"`
	// Moments (numeric, optional) are the exact moments of every value
	// profiled when Values is a sample of them (a learned reference keeps
	// ReferenceSample values); without them they are computed from Values.
	Moments *profileMoments `json:"moments,omitempty"`
	// Levels and LevelCounts (numeric, optional) are a discrete feature's
	// distinct values, ascending, and their exact counts.
	Levels      []float64 `json:"levels,omitempty"`
	LevelCounts []float64 `json:"level_counts,omitempty"`
}

// profileMoments are stats.Moments as JSON: the count, the mean and the
// sums of the 2nd, 3rd and 4th powers of the deviations from it.
type profileMoments struct {
	N    float64 `json:"n"`
	Mean float64 `json:"mean"`
	M2   float64 `json:"m2"`
	M3   float64 `json:"m3"`
	M4   float64 `json:"m4"`
}

// readProfile reads and checks a profile file, returning it with the hash
// of its bytes. maxValues bounds the values kept per numeric feature.
func readProfile(path string, maxValues int) (*profileFile, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(data)
	p, err := parseProfile(data, maxValues)
	if err != nil {
		return nil, "", err
	}
	return p, hex.EncodeToString(sum[:]), nil
}

func parseProfile(data []byte, maxValues int) (*profileFile, error) {
	var p profileFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("decoding JSON: %w", err)
	}
	if p.Format != ProfileFormat {
		return nil, fmt.Errorf("format is %q, want %q", p.Format, ProfileFormat)
	}
	if len(p.Features) == 0 {
		return nil, errors.New("no features")
	}
	for name, f := range p.Features {
		if name == "" {
			return nil, errors.New("empty feature name")
		}
		switch f.Kind {
		case "numeric":
			if len(f.Values) == 0 || f.Counts != nil {
				return nil, fmt.Errorf("feature %q: numeric needs values (and no counts)", name)
			}
			if err := checkSummary(&f); err != nil {
				return nil, fmt.Errorf("feature %q: %w", name, err)
			}
			f.Values = reservoir(f.Values, maxValues)
			sort.Float64s(f.Values)
		case "categorical":
			if len(f.Counts) == 0 || f.Values != nil {
				return nil, fmt.Errorf("feature %q: categorical needs counts (and no values)", name)
			}
			total := 0.0
			for _, c := range f.Counts {
				if !(c >= 0) || math.IsInf(c, 1) {
					return nil, fmt.Errorf("feature %q: counts must be finite and >= 0", name)
				}
				total += c
			}
			if total <= 0 {
				return nil, fmt.Errorf("feature %q: counts total 0", name)
			}
		default:
			return nil, fmt.Errorf("feature %q: kind must be numeric or categorical, got %q", name, f.Kind)
		}
		p.Features[name] = f
	}
	return &p, nil
}

// reference turns a checked profile into a reference. Features beyond
// MaxFeatures are left out, the configured ones (first) and then the rest
// by name; left names the ones left out.
func (p *profileFile) reference(source, origin string, configured []string, bins int) (ref *refProfile, left []string) {
	names := make([]string, 0, len(p.Features))
	for _, n := range configured {
		if _, ok := p.Features[n]; ok {
			names = append(names, n)
		}
	}
	rest := make([]string, 0, len(p.Features))
	for n := range p.Features {
		if !slices.Contains(names, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	names = append(names, rest...)
	if len(names) > MaxFeatures {
		names, left = names[:MaxFeatures], names[MaxFeatures:]
	}
	ref = &refProfile{source: source, origin: origin, features: make(map[string]*featureRef, len(names))}
	for _, n := range names {
		f := p.Features[n]
		var fr *featureRef
		switch {
		case f.Kind == "numeric" && f.Moments != nil:
			m := f.Moments
			fr = numericRefOf(f.Values, bins, stats.Moments{N: m.N, Mean: m.Mean, M2: m.M2, M3: m.M3, M4: m.M4},
				f.Levels, f.LevelCounts)
		case f.Kind == "numeric":
			fr = numericRef(f.Values, bins)
		default:
			fr = categoricalRef(foldCategories(f.Counts))
		}
		ref.features[n] = fr
		ref.names = append(ref.names, n)
		ref.rows = max(ref.rows, fr.n)
	}
	if p.Rows > 0 {
		ref.rows = p.Rows
	}
	return ref, left
}

// checkSummary checks a numeric feature's optional moments and levels.
func checkSummary(f *profileFeature) error {
	if m := f.Moments; m != nil {
		for _, x := range []float64{m.N, m.Mean, m.M2, m.M3, m.M4} {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return errors.New("moments must be finite")
			}
		}
		if m.N < float64(min(len(f.Values), MaxProfileValues)) || m.M2 < 0 || m.M4 < 0 {
			return errors.New("moments need n >= the values kept, m2 >= 0 and m4 >= 0")
		}
	}
	if f.Levels == nil && f.LevelCounts == nil {
		return nil
	}
	if f.Moments == nil || len(f.Levels) != len(f.LevelCounts) || len(f.Levels) == 0 || len(f.Levels) > maxLevels {
		return fmt.Errorf("levels need moments and as many level_counts, 1 to %d of them", maxLevels)
	}
	for i, x := range f.Levels {
		c := f.LevelCounts[i]
		if math.IsNaN(x) || math.IsInf(x, 0) || (i > 0 && x <= f.Levels[i-1]) || !(c >= 0) || math.IsInf(c, 1) {
			return errors.New("levels must be finite and ascending, level_counts finite and >= 0")
		}
	}
	return nil
}

// profileOf renders a reference as a profile file.
func profileOf(ref *refProfile, model, version string, warmup int, now time.Time) *profileFile {
	if !ref.created.IsZero() {
		now = ref.created
	}
	p := &profileFile{Format: ProfileFormat, Model: model, Version: version, Source: ref.source,
		Warmup: warmup, Rows: ref.rows, CreatedAt: &now, Features: make(map[string]profileFeature, len(ref.features))}
	for name, f := range ref.features {
		if f.kind == kindNumeric {
			m := f.mom
			p.Features[name] = profileFeature{Kind: "numeric", Values: f.values,
				Moments: &profileMoments{N: m.N, Mean: m.Mean, M2: m.M2, M3: m.M3, M4: m.M4},
				Levels:  f.levels, LevelCounts: f.levelCounts}
			continue
		}
		counts := make(map[string]float64, len(f.cats))
		for i, c := range f.cats {
			counts[c] = f.counts[i]
		}
		p.Features[name] = profileFeature{Kind: "categorical", Counts: counts}
	}
	return p
}

// reservoir returns at most k of values, chosen by a reservoir sample with
// a fixed seed so that one file always yields the same reference.
func reservoir(values []float64, k int) []float64 {
	if len(values) <= k {
		return values
	}
	rng := rand.New(rand.NewPCG(0x76616e65, uint64(len(values))))
	out := slices.Clone(values[:k])
	for i := k; i < len(values); i++ {
		if j := rng.IntN(i + 1); j < k {
			out[j] = values[i]
		}
	}
	return out
}

// foldCategories keeps the maxCategories-1 most frequent categories (ties
// by name) and sums the rest into OtherCategory.
func foldCategories(counts map[string]float64) map[string]float64 {
	if len(counts) <= maxCategories {
		return counts
	}
	cats := make([]string, 0, len(counts))
	for c := range counts {
		if c != OtherCategory {
			cats = append(cats, c)
		}
	}
	sort.Slice(cats, func(i, j int) bool {
		if counts[cats[i]] != counts[cats[j]] {
			return counts[cats[i]] > counts[cats[j]]
		}
		return cats[i] < cats[j]
	})
	out := make(map[string]float64, maxCategories)
	for _, c := range cats[:maxCategories-1] {
		out[c] = counts[c]
	}
	other := counts[OtherCategory]
	for _, c := range cats[maxCategories-1:] {
		other += counts[c]
	}
	out[OtherCategory] = other
	return out
}

// writeFileAtomic replaces path with data, mode 0644, creating its
// directory first; readers see the old file or the new one, never a part
// (see configs.WriteFileAtomic).
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return configs.WriteFileAtomic(path, data, 0o644)
}
