package toy

import (
	"errors"
	"fmt"
	"math"
)

// Iris classes, as returned in predictions.
const (
	Setosa     = 0
	Versicolor = 1
	Virginica  = 2
)

// ClassNames names the classes by index.
var ClassNames = []string{"setosa", "versicolor", "virginica"}

// stump is a two-level decision tree on petal length and width:
//
//	petal_length < setosaMax                      -> setosa
//	petal_width < widthMax && petal_length < lenMax -> versicolor
//	otherwise                                     -> virginica
type stump struct {
	setosaMax float64
	widthMax  float64
	lenMax    float64
}

// Thresholds of the two versions. v2's are shifted so that borderline
// versicolor rows such as [6.0, 3.4, 4.5, 1.6] or [6.8, 2.8, 4.8, 1.4] become
// virginica.
var (
	stumpV1 = stump{setosaMax: 2.45, widthMax: 1.75, lenMax: 4.95}
	stumpV2 = stump{setosaMax: 2.60, widthMax: 1.55, lenMax: 4.75}
)

func stumpFor(version string) stump {
	if version == "v1" {
		return stumpV1
	}
	return stumpV2
}

func (s stump) class(length, width float64) int {
	switch {
	case length < s.setosaMax:
		return Setosa
	case width < s.widthMax && length < s.lenMax:
		return Versicolor
	default:
		return Virginica
	}
}

// proba returns class probabilities consistent with class: the predicted
// class gets 0.5 to 0.95 growing with the margin to the nearest deciding
// threshold, the nearest other class most of the rest.
func (s stump) proba(length, width float64) []float64 {
	c := s.class(length, width)
	var margin float64
	var near int
	switch c {
	case Setosa:
		margin, near = s.setosaMax-length, Versicolor
	case Versicolor:
		toSetosa := length - s.setosaMax
		toVirginica := min(s.widthMax-width, s.lenMax-length)
		margin, near = toVirginica, Virginica
		if toSetosa < toVirginica {
			margin, near = toSetosa, Setosa
		}
	default:
		margin, near = max(width-s.widthMax, length-s.lenMax), Versicolor
	}
	top := round4(0.5 + 0.45*min(1, max(margin, 0)/0.5))
	p := make([]float64, 3)
	p[c] = top
	p[near] = round4((1 - top) * 0.8)
	p[3-c-near] = round4(1 - top - p[near])
	return p
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// result is what the model answers for a batch of rows.
type result struct {
	Classes []int
	Probs   [][]float64 // nil for v1
}

// predict classifies rows; each row has len(m.opts.Features) values.
func (m *Model) predict(rows [][]float64) result {
	res := result{Classes: make([]int, len(rows))}
	if m.probs {
		res.Probs = make([][]float64, len(rows))
	}
	for i, row := range rows {
		l, w := row[m.lenIdx], row[m.widIdx]
		res.Classes[i] = m.stump.class(l, w)
		if n := int64(m.opts.DisagreeEvery); n > 0 && m.rowsSeen.Add(1)%n == 0 {
			res.Classes[i] = (res.Classes[i] + 1) % len(ClassNames)
		}
		if m.probs {
			res.Probs[i] = m.stump.proba(l, w)
		}
	}
	return res
}

// rows converts a JSON list of instances into feature rows. Each instance is
// a list of len(Features) numbers in feature order, or an object keyed by
// feature name (extra keys are ignored).
func (m *Model) rows(v any) ([][]float64, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("instances must be a list, got %s", jsonKind(v))
	}
	if len(list) == 0 {
		return nil, errors.New("no instances")
	}
	out := make([][]float64, len(list))
	for i, inst := range list {
		row, err := m.row(inst)
		if err != nil {
			return nil, fmt.Errorf("instance %d: %w", i, err)
		}
		out[i] = row
	}
	return out, nil
}

func (m *Model) row(v any) ([]float64, error) {
	feats := m.opts.Features
	row := make([]float64, len(feats))
	switch x := v.(type) {
	case []any:
		if len(x) != len(feats) {
			return nil, fmt.Errorf("want %d values %v, got %d", len(feats), feats, len(x))
		}
		for j, e := range x {
			f, err := number(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", feats[j], err)
			}
			row[j] = f
		}
	case map[string]any:
		for j, name := range feats {
			e, ok := x[name]
			if !ok {
				return nil, fmt.Errorf("missing feature %q", name)
			}
			f, err := number(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			row[j] = f
		}
	default:
		return nil, fmt.Errorf("want a list or an object, got %s", jsonKind(v))
	}
	return row, nil
}

// columns converts named columns ({"petal_length": [1.4, 4.8], ...}) into
// rows. Column values may be numbers or one-element lists ([N,1] tensors).
func (m *Model) columns(cols map[string]any) ([][]float64, error) {
	var out [][]float64
	for j, name := range m.opts.Features {
		v, ok := cols[name]
		if !ok {
			return nil, fmt.Errorf("missing column %q", name)
		}
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("column %q must be a list, got %s", name, jsonKind(v))
		}
		if j == 0 {
			if len(list) == 0 {
				return nil, errors.New("no rows")
			}
			out = make([][]float64, len(list))
			for i := range out {
				out[i] = make([]float64, len(m.opts.Features))
			}
		} else if len(list) != len(out) {
			return nil, fmt.Errorf("column %q has %d values, want %d", name, len(list), len(out))
		}
		for i, e := range list {
			if one, ok := e.([]any); ok && len(one) == 1 {
				e = one[0]
			}
			f, err := number(e)
			if err != nil {
				return nil, fmt.Errorf("column %q row %d: %w", name, i, err)
			}
			out[i][j] = f
		}
	}
	return out, nil
}

func number(v any) (float64, error) {
	f, ok := v.(float64)
	if !ok {
		return 0, fmt.Errorf("want a number, got %s", jsonKind(v))
	}
	return finite(f)
}

func finite(f float64) (float64, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("value %v is not finite", f)
	}
	return f, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}
