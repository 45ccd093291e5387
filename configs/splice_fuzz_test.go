package configs

import (
	"strings"
	"testing"
)

// FuzzSpliceWeights checks the weight edit's contract on any config that
// parses: when SpliceWeights accepts an edit of models[0]'s first
// version, the result parses to exactly the requested weight, every other
// weight is as before, and no line but that version's weight line (or
// the one inserted for it) differs.
func FuzzSpliceWeights(f *testing.F) {
	for _, name := range Examples() {
		data, err := Example(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, 42.5)
	}
	f.Add([]byte(commentedYAML), 0.0)
	f.Add([]byte("models:\n  - name: m\n    match: {path_prefix: /}\n    versions:\n      - {name: a, weight: 1e2, endpoints: [\"http://h:1\"]}   # x\n"), 3.0)
	f.Add([]byte("models:\n  - name: m\n    match: {path_prefix: /}\n    versions:\n      - name: a\n        endpoints: [\"http://h:1\"]\n"), 7.0)
	f.Fuzz(func(t *testing.T, data []byte, w float64) {
		cfg, err := Parse(data)
		if err != nil || len(cfg.Models) == 0 || !(w > 0 && w < 1e12) {
			return
		}
		name := cfg.Models[0].Versions[0].Name
		out, err := SpliceWeights(data, 0, map[string]float64{name: w})
		if err != nil {
			return // refused: the file is untouched by contract
		}
		got, err := Parse(out)
		if err != nil {
			t.Fatalf("spliced config does not parse: %v\n%s", err, out)
		}
		for i, m := range cfg.Models {
			for j, v := range m.Versions {
				want := v.Weight
				if i == 0 && j == 0 {
					want = w
				}
				if got.Models[i].Versions[j].Weight != want {
					t.Fatalf("models[%d].versions[%d].weight = %v, want %v\n%s", i, j, got.Models[i].Versions[j].Weight, want, out)
				}
			}
		}
		before, after := strings.Split(string(data), "\n"), strings.Split(string(out), "\n")
		switch len(after) - len(before) {
		case 0:
			diff := 0
			for k := range before {
				if before[k] != after[k] {
					diff++
				}
			}
			if diff > 1 {
				t.Fatalf("%d lines changed, want at most 1\n%s", diff, out)
			}
		case 1:
			// One line inserted, the rest as before.
			k := 0
			for k < len(before) && before[k] == after[k] {
				k++
			}
			if strings.Join(before[k:], "\n") != strings.Join(after[k+1:], "\n") {
				t.Fatalf("more than one line inserted\n%s", out)
			}
		default:
			t.Fatalf("line count changed by %d\n%s", len(after)-len(before), out)
		}
	})
}
