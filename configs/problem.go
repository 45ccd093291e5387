package configs

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a config file.
type Problem struct {
	// Path names the field, as in models[0].versions[1].weight. Empty means
	// the file as a whole (for example a YAML syntax error).
	Path string
	// Line is the 1-based line in the file, or 0 when unknown (the field is
	// absent, or the config was not parsed from a file).
	Line int
	// Msg says what is wrong, lower case, without the path.
	Msg string
}

// String renders the problem on one line:
//
//	models[0].versions[1].weight (line 12): must be >= 0, got -5
//
// The line part is left out when Line is 0; a problem about the whole file
// is named "config".
func (p Problem) String() string {
	var b strings.Builder
	if p.Path == "" {
		b.WriteString("config")
	} else {
		b.WriteString(p.Path)
	}
	if p.Line > 0 {
		b.WriteString(" (line ")
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(p.Msg)
	return b.String()
}

// Errors is every problem found in a config, ordered by line. Parse, Load
// and Validate return it as their error, never empty; obtain it with
// errors.As.
type Errors []Problem

// Error joins the problems, one per line.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// err returns e as an error, or a nil error when e is empty (never a typed
// nil inside a non-nil interface).
func (e Errors) err() error {
	if len(e) == 0 {
		return nil
	}
	sort.SliceStable(e, func(i, j int) bool { return e[i].Line < e[j].Line })
	return e
}

// add appends a problem.
func (e *Errors) add(path string, line int, format string, args ...any) {
	*e = append(*e, Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// withoutOverlap drops the problems of e whose path is an ancestor,
// descendant or equal of a path in shadow. A key that failed to decode
// leaves a zero value behind; rules about it or its parents would only
// repeat the decode problem in a confusing way.
func (e Errors) withoutOverlap(shadow Errors) Errors {
	var out Errors
	for _, p := range e {
		overlaps := false
		for _, s := range shadow {
			if within(p.Path, s.Path) || within(s.Path, p.Path) {
				overlaps = true
				break
			}
		}
		if !overlaps {
			out = append(out, p)
		}
	}
	return out
}

// within reports whether path is ancestor or equal, segment-wise: "models"
// holds "models[1].name" but not "modelsx"; "models[1]" does not hold
// "models[10]".
func within(path, ancestor string) bool {
	if ancestor == "" {
		return true
	}
	if !strings.HasPrefix(path, ancestor) {
		return false
	}
	if len(path) == len(ancestor) {
		return true
	}
	c := path[len(ancestor)]
	return c == '.' || c == '['
}

// child joins a key onto a path.
func child(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// item joins a sequence index onto a path.
func item(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parent strips the last segment of a path; the parent of a top-level key
// is "".
func parent(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}
