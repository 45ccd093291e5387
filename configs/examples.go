package configs

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// shipped holds the example configs of this directory: every *.yaml file,
// embedded at build time. Read-only.
//
//go:embed *.yaml
var shipped embed.FS

// Examples lists the names of the embedded example configs, sorted, without
// the ".yaml" extension (for example "example", "minimal").
func Examples() []string {
	entries, err := shipped.ReadDir(".")
	if err != nil {
		return nil // cannot happen: the directory is embedded
	}
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".yaml"); ok && !e.IsDir() {
			names = append(names, name)
		}
	}
	return names
}

// Example returns the bytes of the embedded example config called name,
// with or without its ".yaml" extension. An unknown name gives an error
// wrapping fs.ErrNotExist.
func Example(name string) ([]byte, error) {
	file := strings.TrimSuffix(name, ".yaml") + ".yaml"
	if !fs.ValidPath(file) || path.Dir(file) != "." {
		return nil, fmt.Errorf("example config %q: %w", name, fs.ErrNotExist)
	}
	data, err := shipped.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("example config %q (have %s): %w", name, strings.Join(Examples(), ", "), fs.ErrNotExist)
	}
	return data, nil
}
