package monitor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"

	"github.com/vaneproxy/vane/monitor/decode"
)

// BuildProfile reads training or logged traffic, one exchange per line,
// and writes the reference profile (ProfileFormat) that
// monitor.reference.file can name. Each non-empty line is either a request
// body of spec's protocol, exactly as a client sends it, or an object
// {"request": <body>, "response": <body>} to profile the predictions too.
// Lines are decoded by the same decoders as live traffic, so the features
// get the same names. A line that cannot be decoded, or a feature whose
// kind changes between lines, is an error naming the line.
func BuildProfile(r io.Reader, spec *decode.Spec, w io.Writer) (rows int, err error) {
	type acc struct {
		kind   string
		values []float64
		counts map[string]float64
	}
	features := map[string]*acc{}
	add := func(line int, f decode.Field) error {
		a := features[f.Name]
		kind := "numeric"
		if f.Value.IsCat {
			kind = "categorical"
		}
		if a == nil {
			a = &acc{kind: kind, counts: map[string]float64{}}
			features[f.Name] = a
		}
		if a.kind != kind {
			return fmt.Errorf("line %d: feature %q is %s here but %s before", line, f.Name, kind, a.kind)
		}
		if f.Value.IsCat {
			a.counts[f.Value.Cat]++
		} else if !math.IsNaN(f.Value.Num) && !math.IsInf(f.Value.Num, 0) {
			a.values = append(a.values, f.Value.Num)
		}
		return nil
	}

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	var out []decode.Row
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		in := decode.Input{ReqBody: text, Status: 200, InferenceHeaderLen: -1, RespInferenceHeaderLen: -1}
		var pair struct {
			Request  json.RawMessage `json:"request"`
			Response json.RawMessage `json:"response"`
		}
		if json.Unmarshal(text, &pair) == nil && len(pair.Request) > 0 {
			in.ReqBody, in.RespBody = pair.Request, pair.Response
		}
		out, err = decode.Decode(out[:0], spec, &in)
		if err != nil {
			return rows, fmt.Errorf("line %d: %w", line, err)
		}
		for _, row := range out {
			for _, f := range row.Features {
				if err := add(line, f); err != nil {
					return rows, err
				}
			}
			for _, f := range row.Predictions {
				if err := add(line, f); err != nil {
					return rows, err
				}
			}
			rows++
		}
	}
	if err := sc.Err(); err != nil {
		return rows, fmt.Errorf("reading input: %w", err)
	}
	if rows == 0 {
		return 0, fmt.Errorf("no rows in the input")
	}
	p := profileFile{Format: ProfileFormat, Rows: rows, Features: make(map[string]profileFeature, len(features))}
	for name, a := range features {
		if a.kind == "numeric" {
			p.Features[name] = profileFeature{Kind: a.kind, Values: reservoir(a.values, MaxProfileValues)}
		} else {
			p.Features[name] = profileFeature{Kind: a.kind, Counts: a.counts}
		}
	}
	enc := json.NewEncoder(w)
	return rows, enc.Encode(&p)
}
