package toy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPredictKnownRows(t *testing.T) {
	for _, v := range versions {
		t.Run(v.version, func(t *testing.T) {
			res := New(Options{Version: v.version}).predict(allRows)
			assert.Equal(t, v.classes, res.Classes)
			if v.version == "v1" {
				assert.Nil(t, res.Probs, "v1 answers classes only")
			} else {
				assert.Len(t, res.Probs, len(allRows))
			}
		})
	}
}

func TestAnyOtherVersionUsesV2Thresholds(t *testing.T) {
	res := New(Options{Version: "canary"}).predict(allRows)
	assert.Equal(t, versions[1].classes, res.Classes)
	assert.NotNil(t, res.Probs)
}

func TestCustomFeatureOrder(t *testing.T) {
	m := New(Options{Features: []string{"petal_width", "petal_length", "x"}})
	res := m.predict([][]float64{{1.4, 4.8, 0}, {0.2, 1.4, 9}})
	assert.Equal(t, []int{Versicolor, Setosa}, res.Classes)

	m = New(Options{Features: []string{"a", "b"}}) // last two features: length, width
	assert.Equal(t, []int{Virginica}, m.predict([][]float64{{6.0, 2.5}}).Classes)

	m = New(Options{Features: []string{"only"}}) // too few: defaults
	assert.Equal(t, DefaultFeatures, m.opts.Features)
}

func TestProbabilitiesAgreeWithClass(t *testing.T) {
	for _, s := range []stump{stumpV1, stumpV2} {
		for l := 0.0; l <= 8; l += 0.05 {
			for w := 0.0; w <= 3; w += 0.05 {
				p := s.proba(l, w)
				require.Len(t, p, 3)
				sum, best := 0.0, 0
				for i, x := range p {
					require.GreaterOrEqual(t, x, 0.0)
					require.LessOrEqual(t, x, 1.0)
					sum += x
					if x > p[best] {
						best = i
					}
				}
				require.InDelta(t, 1, sum, 1e-9, "l=%v w=%v p=%v", l, w, p)
				require.Equal(t, s.class(l, w), best, "l=%v w=%v p=%v", l, w, p)
			}
		}
	}
}

func TestRowsAndColumns(t *testing.T) {
	m := New(Options{})
	tests := []struct {
		name    string
		rows    any
		cols    map[string]any
		want    [][]float64
		wantErr string
	}{
		{name: "list rows", rows: []any{[]any{1.0, 2.0, 3.0, 4.0}}, want: [][]float64{{1, 2, 3, 4}}},
		{name: "object rows ignore extra keys", rows: []any{map[string]any{
			"petal_width": 4.0, "sepal_length": 1.0, "petal_length": 3.0, "sepal_width": 2.0, "id": "x"}},
			want: [][]float64{{1, 2, 3, 4}}},
		{name: "short row", rows: []any{[]any{1.0}}, wantErr: "want 4 values"},
		{name: "string value", rows: []any{[]any{1.0, "2", 3.0, 4.0}}, wantErr: "sepal_width: want a number"},
		{name: "missing key", rows: []any{map[string]any{"sepal_length": 1.0}}, wantErr: `missing feature "sepal_width"`},
		{name: "not a list", rows: map[string]any{}, wantErr: "must be a list"},
		{name: "empty", rows: []any{}, wantErr: "no instances"},
		{name: "scalar instance", rows: []any{1.0}, wantErr: "want a list or an object"},
		{name: "columns", cols: map[string]any{
			"sepal_length": []any{1.0, 5.0}, "sepal_width": []any{2.0, 6.0},
			"petal_length": []any{[]any{3.0}, []any{7.0}}, "petal_width": []any{4.0, 8.0}},
			want: [][]float64{{1, 2, 3, 4}, {5, 6, 7, 8}}},
		{name: "ragged columns", cols: map[string]any{
			"sepal_length": []any{1.0, 5.0}, "sepal_width": []any{2.0},
			"petal_length": []any{3.0}, "petal_width": []any{4.0}}, wantErr: "has 1 values, want 2"},
		{name: "missing column", cols: map[string]any{"sepal_length": []any{1.0}}, wantErr: `missing column "sepal_width"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got [][]float64
			var err error
			if tc.cols != nil {
				got, err = m.columns(tc.cols)
			} else {
				got, err = m.rows(tc.rows)
			}
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDisagreeEvery(t *testing.T) {
	plain, odd := New(Options{}), New(Options{DisagreeEvery: 10})
	rows := make([][]float64, 100)
	for i := range rows {
		rows[i] = []float64{5.9, 2.8, float64(i%60) / 10, 1.3}
	}
	a, b := plain.predict(rows), odd.predict(rows)
	differ := 0
	for i := range rows {
		if a.Classes[i] != b.Classes[i] {
			differ++
			if b.Classes[i] != (a.Classes[i]+1)%3 || i%10 != 9 {
				t.Fatalf("row %d: %d vs %d", i, a.Classes[i], b.Classes[i])
			}
		}
	}
	if differ != 10 {
		t.Fatalf("%d of 100 rows differ, want 10", differ)
	}
}
