package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/vaneproxy/vane/configs"
)

const weightsUsage = `usage: vane weights -config FILE [command]

  (no command)               print every model's weights
  set MODEL V=W [V=W ...]    set the named versions' weights (others keep theirs)
  promote MODEL VERSION      all traffic to VERSION (weight 100, the others 0)
  rollback MODEL             the weights before the model's last recorded change
  history MODEL              the model's recorded changes, oldest first

The file is edited in place: only the weight values change (comments and
layout are kept), the whole config is validated first, and the write is
atomic, so a running vane reloads it through its file watch. Changes are
journaled in state_dir/weights.jsonl (beside the config as
.NAME.weights.jsonl when state_dir is empty).
`

// weights runs `vane weights`.
func weights(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("weights", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, weightsUsage) }
	path := fs.String("config", "vane.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	ed := &configs.WeightEditor{Path: *path}
	if len(rest) == 0 {
		cfg, _, err := configs.Load(*path)
		if err != nil {
			printConfigError(stderr, *path, err)
			return 1
		}
		for _, m := range configs.WeightsOf(cfg) {
			fmt.Fprintf(stdout, "%s %s\n", m.Model, configs.FormatWeights(m.Versions))
		}
		return 0
	}
	cmd, rest := rest[0], rest[1:]
	who := "vane weights " + cmd
	var ch configs.Change
	var err error
	switch {
	case cmd == "set" && len(rest) >= 2:
		w, perr := parseWeights(rest[1:])
		if perr != nil {
			fmt.Fprintf(stderr, "vane weights set: %v\n", perr)
			return 2
		}
		ch, err = ed.Set(rest[0], w, who, "")
	case cmd == "promote" && len(rest) == 2:
		ch, err = ed.Promote(rest[0], rest[1], who)
	case cmd == "rollback" && len(rest) == 1:
		ch, err = ed.Rollback(rest[0], who)
	case cmd == "history" && len(rest) == 1:
		return history(ed, rest[0], stdout, stderr)
	default:
		fmt.Fprint(stderr, weightsUsage)
		return 2
	}
	if err != nil {
		var problems configs.Errors
		if errors.As(err, &problems) {
			fmt.Fprintf(stderr, "vane weights %s: refused, the file is unchanged:\n", cmd)
			printConfigError(stderr, *path, problems)
		} else {
			fmt.Fprintf(stderr, "vane weights %s: %v\n", cmd, err)
		}
		return 1
	}
	if !ch.Changed {
		fmt.Fprintf(stdout, "%s %s (unchanged)\n", ch.Model, configs.FormatWeights(ch.After))
		return 0
	}
	fmt.Fprintf(stdout, "%s %s (was %s)\n", ch.Model, configs.FormatWeights(ch.After), configs.FormatWeights(ch.Before))
	return 0
}

// parseWeights reads "v2=100 v1=0".
func parseWeights(args []string) (map[string]float64, error) {
	w := map[string]float64{}
	for _, a := range args {
		name, val, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not VERSION=WEIGHT", a)
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: weight must be a number", a)
		}
		if _, dup := w[name]; dup {
			return nil, fmt.Errorf("version %q given twice", name)
		}
		w[name] = f
	}
	return w, nil
}

func history(ed *configs.WeightEditor, model string, stdout, stderr io.Writer) int {
	hist, err := ed.History(model)
	if err != nil {
		fmt.Fprintf(stderr, "vane weights history: %v\n", err)
		return 1
	}
	if len(hist) == 0 {
		fmt.Fprintf(stderr, "vane weights history: no recorded change of model %q\n", model)
		return 0
	}
	for _, e := range hist {
		line := fmt.Sprintf("%d %s %s: %s -> %s", e.Seq, e.When.Format("2006-01-02T15:04:05Z"), e.Who,
			configs.FormatWeights(e.Before), configs.FormatWeights(e.After))
		if e.Undoes != 0 {
			line += fmt.Sprintf(" (undoes %d)", e.Undoes)
		}
		if e.Note != "" {
			line += " # " + e.Note
		}
		fmt.Fprintln(stdout, line)
	}
	return 0
}
