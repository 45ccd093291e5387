package configs

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// SpliceWeights returns data with the weights of models[model]'s versions
// named in w replaced, every other byte kept. A version without a weight
// key (it has the default) gets a "weight:" line after its first key,
// when it is written in block style. Weights that are aliases, come from
// merge keys, or span lines are refused: they may stand for more than one
// place, so only a hand edit can say which.
func SpliceWeights(data []byte, model int, w map[string]float64) ([]byte, error) {
	root, probs := parseNode(data)
	if len(probs) > 0 {
		return nil, probs.err()
	}
	if root == nil || root.Kind != yaml.MappingNode {
		return nil, errors.New("the config is not a mapping")
	}
	models := ownValue(root, "models")
	if models == nil || models.Kind != yaml.SequenceNode || model >= len(models.Content) {
		return nil, fmt.Errorf("models[%d]: not found as a plain list item (aliases and merge keys cannot be edited in place)", model)
	}
	mn := models.Content[model]
	path := item("models", model)
	if mn.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: is an alias or not a mapping; edit its weights by hand", path)
	}
	versions := ownValue(mn, "versions")
	if versions == nil || versions.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s.versions: not a plain list (aliases and merge keys cannot be edited in place)", path)
	}
	lines := splitLines(data)
	var edits []splice
	for j, vn := range versions.Content {
		vp := item(path+".versions", j)
		if vn.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: is an alias or not a mapping; edit its weights by hand", vp)
		}
		name := ownValue(vn, "name")
		if name == nil {
			return nil, fmt.Errorf("%s.name: not set directly", vp)
		}
		nw, ok := w[name.Value]
		if !ok {
			continue
		}
		text := fmtFloat(nw)
		key, val := ownPair(vn, "weight")
		if key == nil {
			if hasMerge(vn) {
				return nil, fmt.Errorf("%s.weight: comes from a merge key (<<); edit it by hand", vp)
			}
			sp, err := insertWeight(lines, vn, text, vp)
			if err != nil {
				return nil, err
			}
			edits = append(edits, sp)
			continue
		}
		sp, err := replaceScalar(lines, val, text, vp+".weight")
		if err != nil {
			return nil, err
		}
		edits = append(edits, sp)
	}
	slices.SortFunc(edits, func(a, b splice) int { return b.at - a.at })
	out := slices.Clone(data)
	for _, sp := range edits {
		out = slices.Concat(out[:sp.at], []byte(sp.text), out[sp.at+sp.drop:])
	}
	return out, nil
}

// splice replaces drop bytes at offset at with text.
type splice struct {
	at, drop int
	text     string
}

// line is one line of the file: its offset and bytes (without "\n").
type line struct {
	at   int
	text []byte
}

func splitLines(data []byte) []line {
	var out []line
	at := 0
	for at <= len(data) {
		i := bytes.IndexByte(data[at:], '\n')
		if i < 0 {
			out = append(out, line{at: at, text: data[at:]})
			break
		}
		out = append(out, line{at: at, text: data[at : at+i]})
		at += i + 1
	}
	return out
}

// offset is the byte offset of a 1-based line and rune column.
func offset(lines []line, ln, col int) (int, bool) {
	if ln < 1 || ln > len(lines) {
		return 0, false
	}
	l := lines[ln-1]
	b := 0
	for c := 1; c < col; c++ {
		if b >= len(l.text) {
			return 0, false
		}
		_, size := utf8.DecodeRune(l.text[b:])
		b += size
	}
	return l.at + b, true
}

// replaceScalar plans replacing a one-line plain number with text.
func replaceScalar(lines []line, val *yaml.Node, text, path string) (splice, error) {
	if val.Kind != yaml.ScalarNode || val.Anchor != "" || val.Style != 0 || val.Tag != "!!float" && val.Tag != "!!int" {
		return splice{}, fmt.Errorf("%s (line %d): not a plain number (an alias, anchor, tag or quoted value); edit it by hand", path, val.Line)
	}
	at, ok := offset(lines, val.Line, val.Column)
	if !ok {
		return splice{}, fmt.Errorf("%s (line %d): position not found in the file", path, val.Line)
	}
	l := lines[val.Line-1]
	rest := l.text[at-l.at:]
	end := len(rest)
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c == ',' || c == '}' || c == ']' || c == '#' && i > 0 && (rest[i-1] == ' ' || rest[i-1] == '\t') {
			end = i
			break
		}
	}
	tok := strings.TrimRight(string(rest[:end]), " \t\r")
	if tok != val.Value {
		return splice{}, fmt.Errorf("%s (line %d): the value spans lines or is written unusually (%q); edit it by hand", path, val.Line, tok)
	}
	return splice{at: at, drop: len(tok), text: text}, nil
}

// insertWeight plans a "weight: text" line after the first key of a block
// mapping, at that key's indentation.
func insertWeight(lines []line, vn *yaml.Node, text, path string) (splice, error) {
	if vn.Style&yaml.FlowStyle != 0 || len(vn.Content) < 2 {
		return splice{}, fmt.Errorf("%s (line %d): has no weight key and is written in flow style; add \"weight\" by hand", path, vn.Line)
	}
	k, v := vn.Content[0], vn.Content[1]
	if v.Kind != yaml.ScalarNode || v.Line != k.Line || k.Line >= len(lines) {
		return splice{}, fmt.Errorf("%s (line %d): has no weight key; add one by hand", path, vn.Line)
	}
	next := lines[k.Line] // the line after the first key
	return splice{at: next.at, text: strings.Repeat(" ", k.Column-1) + "weight: " + text + "\n"}, nil
}

// ownPair finds key among a mapping's own entries (not merged ones).
func ownPair(m *yaml.Node, key string) (k, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key && m.Content[i].ShortTag() != "!!merge" {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

func ownValue(m *yaml.Node, key string) *yaml.Node {
	_, v := ownPair(m, key)
	return v
}

func hasMerge(m *yaml.Node) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].ShortTag() == "!!merge" {
			return true
		}
	}
	return false
}
