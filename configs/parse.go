package configs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the config file at path and parses it with Parse. It returns
// the raw bytes whenever the file could be read, also when they do not
// parse, so that callers can hash or show them. Parse problems come back as
// Errors; a read failure as a wrapped *fs.PathError.
func Load(path string) (*Config, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := Parse(data)
	return cfg, data, err
}

// Parse decodes a config file, fills in the defaults and validates the
// result. On success the Config is complete and valid. Otherwise the error
// is Errors, holding every problem found at once (unknown keys, duplicate
// keys, values of the wrong type, broken rules), each with its field path
// and, where known, its line; Parse never returns a partial Config.
//
// A key whose value is null ("key:", "key: ~") counts as absent. YAML
// anchors, aliases and merge keys ("<<") are supported. The file holds one
// YAML document.
func Parse(data []byte) (*Config, error) {
	root, probs := parseNode(data)
	if len(probs) > 0 {
		return nil, probs.err()
	}
	return ParseNode(root)
}

// ParseNode is Parse for a document already parsed, or built in code
// (as a sidecar builds its xDS models): the same decoding, defaults and
// rules. Problems carry the nodes' lines, 0 for nodes built in code. A
// nil root is an empty file.
func ParseNode(root *yaml.Node) (*Config, error) {
	var probs Errors
	var cfg Config
	d := &decoder{idx: nodeIndex{}}
	if root != nil && !isNull(resolve(root)) {
		d.decode(root, reflect.ValueOf(&cfg).Elem(), "")
	}
	if d.steps > maxDecodeSteps {
		return nil, d.probs.err()
	}
	applyDefaults(&cfg, d.idx)
	probs = append(d.probs, validate(&cfg, d.idx).withoutOverlap(d.probs)...)
	if err := probs.err(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate checks c against every rule that Parse applies, for configs
// built in code rather than parsed. It does not fill in defaults, so a
// zero field that has a default is reported as a problem; the problems
// carry no line numbers.
func (c *Config) Validate() error {
	return validate(c, nodeIndex{}).err()
}

// Hash identifies a config file's content: the first 16 hex digits (64
// bits) of the SHA-256 of the raw bytes. Two files hash alike only when
// their bytes are equal, so a reformatted file gets a new hash even when
// it means the same config.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:16]
}

// parseNode parses data into its root node, nil for an empty file.
func parseNode(data []byte) (*yaml.Node, Errors) {
	var probs Errors
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		probs = append(probs, syntaxProblem(err))
		return nil, probs
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		probs.add("", next.Line, "more than one YAML document (\"---\"); a config file holds exactly one")
	case !errors.Is(err, io.EOF):
		probs = append(probs, syntaxProblem(err))
	}
	if len(probs) > 0 || len(doc.Content) == 0 {
		return nil, probs
	}
	return doc.Content[0], nil
}

// syntaxProblem turns a yaml parser error ("yaml: line 3: did not find
// expected key") into a Problem, line included when the parser names it.
func syntaxProblem(err error) Problem {
	msg, _ := strings.CutPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				return Problem{Line: line, Msg: "invalid YAML: " + text}
			}
		}
	}
	return Problem{Msg: "invalid YAML: " + msg}
}
