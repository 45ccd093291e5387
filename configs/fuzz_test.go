package configs

import (
	"errors"
	"testing"
)

// FuzzParse checks that no input makes Parse panic or break its contract:
// either a config that validates again, or Errors with at least one
// problem, each with a message.
func FuzzParse(f *testing.F) {
	for _, name := range Examples() {
		data, err := Example(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(baseYAML))
	f.Add([]byte(minimalYAML))
	f.Add([]byte(""))
	f.Add([]byte("models: [{name: a, match: {path_prefix: /}, versions: [{name: v, weight: .nan, endpoints: [\"h2c://[::1]:1\"]}]}]"))
	f.Add([]byte("a: &a {<<: *a}\nmodels: *a\n"))
	f.Add([]byte("models:\n  - <<: [{name: x}, {match: {host: h}}]\n    versions: [~]\n"))
	f.Add([]byte("listen: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("parsed config does not validate again: %v", err)
			}
			return
		}
		if cfg != nil {
			t.Fatal("config returned with an error")
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is not Errors: %v", err)
		}
		for _, p := range errs {
			if p.Msg == "" || p.Line < 0 {
				t.Fatalf("bad problem %#v", p)
			}
		}
	})
}
