package xds

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/vaneproxy/vane/configs"
)

// Compose puts models (as FromEnvoy gives them) into the config file base
// in place of its models, and parses the result with the config parser
// (configs.ParseNode): the decoding, defaults and every rule of a file
// apply, and problems name the field path (models[0].versions[1].weight).
// raw is the composed file, whose configs.Hash is the config hash; it is
// what a sidecar persists as its last good config. It is JSON, which is
// YAML too, and loads as a config file.
//
// The models go to the parser as YAML nodes built in code, never as text,
// and raw is JSON: a sidecar composes on every update, and YAML text
// costs several times more. Problems in the models carry no line (there
// is no file).
func Compose(base []byte, models []map[string]any) (*configs.Config, []byte, error) {
	c, err := newComposer(base)
	if err != nil {
		return nil, nil, err
	}
	return c.compose(models)
}

// composer holds a base file, parsed once.
type composer struct {
	pairs []*yaml.Node   // the base mapping's keys and values, but models
	doc   map[string]any // the same, as generic values, for raw
}

func newComposer(base []byte) (*composer, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("reading the base config: %w", err)
	}
	c := &composer{doc: map[string]any{}}
	if len(doc.Content) == 0 {
		return c, nil
	}
	if err := doc.Decode(&c.doc); err != nil {
		return nil, fmt.Errorf("reading the base config: %w", err)
	}
	delete(c.doc, "models")
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("reading the base config: the file must be a mapping")
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "models" {
			c.pairs = append(c.pairs, root.Content[i], root.Content[i+1])
		}
	}
	return c, nil
}

func (c *composer) compose(models []map[string]any) (*configs.Config, []byte, error) {
	list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, m := range models {
		list.Content = append(list.Content, toNode(m))
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	root.Content = append(append(root.Content, c.pairs...), scalar("!!str", "models"), list)
	cfg, err := configs.ParseNode(root)
	doc := make(map[string]any, len(c.doc)+1)
	for k, v := range c.doc {
		doc[k] = v
	}
	doc["models"] = models
	raw, merr := json.Marshal(doc)
	if merr != nil {
		return nil, nil, fmt.Errorf("composing the config: %w", merr)
	}
	if err != nil {
		return nil, raw, err
	}
	return cfg, raw, nil
}

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// toNode builds the YAML node of a generic value: maps (keys sorted),
// lists, strings, numbers (whole ones as integers), booleans and nil.
func toNode(v any) *yaml.Node {
	switch x := v.(type) {
	case nil:
		return scalar("!!null", "null")
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, k := range keys {
			n.Content = append(n.Content, scalar("!!str", k), toNode(x[k]))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range x {
			n.Content = append(n.Content, toNode(e))
		}
		return n
	case []string:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range x {
			n.Content = append(n.Content, scalar("!!str", e))
		}
		return n
	case string:
		return scalar("!!str", x)
	case bool:
		return scalar("!!bool", strconv.FormatBool(x))
	case int:
		return scalar("!!int", strconv.Itoa(x))
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return scalar("!!int", strconv.FormatInt(int64(x), 10))
		}
		return scalar("!!float", strconv.FormatFloat(x, 'g', -1, 64))
	}
	return scalar("!!str", fmt.Sprint(v))
}
