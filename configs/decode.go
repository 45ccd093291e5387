package configs

import (
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Decoding walks the yaml.Node tree alongside the Go types by reflection,
// so that every unknown key, duplicate key and type error is reported with
// its field path and line, all in one pass (yaml.v3's own KnownFields stops
// at the first error and names no path). It also records which keys the
// file set, which is how defaults tell "absent" from "explicit zero".

// Limits that keep hostile or broken input (aliases multiplying nodes,
// merges referring to themselves) from costing unbounded time. A config
// of 100 models with 20 versions of 10 endpoints each takes about 30,000
// steps.
const (
	maxDecodeSteps = 1 << 17
	maxMergeDepth  = 8
)

// entry is what the index knows of one key or list item of the file.
type entry struct {
	line int  // line of the key (of the item, for list items)
	null bool // the value is null or empty, which counts as absent
}

// nodeIndex maps every field path found in the file to its entry.
type nodeIndex map[string]entry

// has reports whether the file set path to a non-null value.
func (ix nodeIndex) has(path string) bool {
	e, ok := ix[path]
	return ok && !e.null
}

// line returns the line of path or, when the file lacks it, of its nearest
// ancestor that the file has; 0 when none.
func (ix nodeIndex) line(path string) int {
	for p := path; p != ""; p = parent(p) {
		if e, ok := ix[p]; ok {
			return e.line
		}
	}
	return 0
}

// decoder holds the state of one decode.
type decoder struct {
	idx   nodeIndex
	probs Errors
	steps int
}

// decode stores n into v, which must be settable. A null n leaves v as is.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.steps++; d.steps > maxDecodeSteps {
		if d.steps == maxDecodeSteps+1 {
			d.probs.add(path, n.Line, "document too large or too deeply aliased")
		}
		return
	}
	n = resolve(n)
	if isNull(n) {
		return
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		d.duration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.mismatch(n, path, "a string")
			return
		}
		v.SetString(n.Value)
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || n.Decode(&f) != nil {
			d.mismatch(n, path, "a number")
			return
		}
		v.SetFloat(f)
	case reflect.Int:
		d.integer(n, v, path)
	case reflect.Bool:
		// Only the YAML 1.2 core booleans: yes/no/on/off are strings.
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.mismatch(n, path, "true or false")
			return
		}
		v.SetBool(strings.EqualFold(n.Value, "true"))
	default:
		d.probs.add(path, n.Line, "cannot decode into %s", v.Type())
	}
}

// structure decodes a mapping into a struct by its fields' yaml tags.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, path, "a mapping")
		return
	}
	fields := map[string]int{}
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" && t.Field(i).IsExported() {
			fields[name] = i
		}
	}
	for _, p := range d.pairs(n, path, 0) {
		key := child(path, p.key.Value)
		i, ok := fields[p.key.Value]
		if !ok {
			d.probs.add(key, p.key.Line, "unknown key %q%s", p.key.Value, suggest(p.key.Value, fields))
			continue
		}
		d.idx[key] = entry{line: p.key.Line, null: isNull(resolve(p.val))}
		d.decode(p.val, v.Field(i), key)
	}
}

// sequence decodes a list into a slice.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.mismatch(n, path, "a list")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, it := range n.Content {
		p := item(path, i)
		d.idx[p] = entry{line: resolve(it).Line, null: isNull(resolve(it))}
		d.decode(it, s.Index(i), p)
	}
	v.Set(s)
}

// mapping decodes a mapping into a map with string keys.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, path, "a mapping")
		return
	}
	t := v.Type()
	m := reflect.MakeMap(t)
	for _, p := range d.pairs(n, path, 0) {
		key := child(path, p.key.Value)
		d.idx[key] = entry{line: p.key.Line, null: isNull(resolve(p.val))}
		ev := reflect.New(t.Elem()).Elem()
		d.decode(p.val, ev, key)
		m.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(t.Key()), ev)
	}
	v.Set(m)
}

// pair is one key and its value.
type pair struct{ key, val *yaml.Node }

// pairs lists a mapping's entries: its own first, then those it merges in
// with "<<" (YAML merge keys) that it does not set itself. Duplicate keys
// and keys that are not scalars are problems.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var out, merged []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.probs.add(path, k.Line, "keys must be strings, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(val, path, depth)...)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.probs.add(child(path, k.Value), k.Line, "duplicate key %q (first set on line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k, val})
	}
	for _, p := range merged {
		if _, dup := seen[p.key.Value]; !dup {
			seen[p.key.Value] = p.key.Line
			out = append(out, p)
		}
	}
	return out
}

// merge returns the entries that a "<<" value brings in: one mapping, or a
// list of mappings where earlier ones win.
func (d *decoder) merge(val *yaml.Node, path string, depth int) []pair {
	val = resolve(val)
	if depth >= maxMergeDepth {
		d.probs.add(path, val.Line, "merge keys (<<) nest too deeply")
		return nil
	}
	switch val.Kind {
	case yaml.MappingNode:
		return d.pairs(val, path, depth+1)
	case yaml.SequenceNode:
		var out []pair
		for _, m := range val.Content {
			if m = resolve(m); m.Kind != yaml.MappingNode {
				d.probs.add(path, m.Line, "merge key (<<) must refer to mappings, got %s", describe(m))
				continue
			}
			out = append(out, d.pairs(m, path, depth+1)...)
		}
		return out
	}
	d.probs.add(path, val.Line, "merge key (<<) must refer to a mapping, got %s", describe(val))
	return nil
}

// duration decodes a Go duration string such as "250ms".
func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.mismatch(n, path, "a duration")
		return
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		d.probs.add(path, n.Line, "must be a duration with a unit, such as \"%ss\" or \"250ms\"; got the bare number %s", n.Value, n.Value)
		return
	case "!!str":
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.probs.add(path, n.Line, "must be a duration such as \"250ms\", \"5s\" or \"1m30s\"; got %q", n.Value)
			return
		}
		v.SetInt(int64(dur))
	default:
		d.mismatch(n, path, "a duration")
	}
}

// integer decodes an integer; a float is accepted only when it is whole
// (1e6), never truncated.
func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int":
			var i int
			if n.Decode(&i) == nil {
				v.SetInt(int64(i))
				return
			}
			d.probs.add(path, n.Line, "must be an integer in range, got %s", n.Value)
			return
		case "!!float":
			var f float64
			if n.Decode(&f) == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				v.SetInt(int64(f))
				return
			}
		}
	}
	d.mismatch(n, path, "an integer")
}

// mismatch reports a value of the wrong shape or type.
func (d *decoder) mismatch(n *yaml.Node, path, want string) {
	d.probs.add(path, n.Line, "must be %s, got %s", want, describe(n))
}

// describe names a node for messages: the quoted scalar, or its kind.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if len(n.Value) > 60 {
			return strconv.Quote(n.Value[:60]) + "..."
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// isNull reports whether n is null: "~", "null", or no value at all.
func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// suggest proposes the closest known key for a misspelt one.
func suggest(key string, known map[string]int) string {
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestDist := "", 3
	for _, k := range names {
		if dist := editDistance(key, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return "; did you mean " + strconv.Quote(best) + "?"
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
