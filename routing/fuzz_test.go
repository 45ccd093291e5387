package routing

import (
	"errors"
	"strings"
	"testing"

	"github.com/vaneproxy/vane/configs"
)

// fuzzConfig has a model of every shape Pick handles: sticky with
// redistribute, a host-matched model with a fallback version of weight 0,
// a header-matched sticky model under on_unhealthy: fail, and a catch-all.
// Two models share a path prefix so that Match's priority rules matter.
func fuzzConfig() *configs.Config {
	iris := sticky(model("iris", ver("v1", 3, "http://a1:1", "http://a2:1"), ver("v2", 1), ver("shadow", 0)))
	iris.Match = configs.Match{PathPrefix: "/v1/models/iris"}
	eu := withPolicy(model("iris-eu", ver("v1", 1), ver("v2", 1, "http://b2:1", "h2c://b3:2"), ver("safe", 0)), configs.OnUnhealthyFallback, "safe")
	eu.Match = configs.Match{PathPrefix: "/v1/models/iris", Host: "EU.example.com:8080"}
	llm := sticky(withPolicy(model("llm", ver("a", 1), ver("b", 2.5)), configs.OnUnhealthyFail, ""))
	llm.Match = configs.Match{PathPrefix: "/", Headers: map[string]string{"x-env": "canary"}}
	all := model("catchall", ver("only", 1))
	all.Match = configs.Match{PathPrefix: "/"}
	return config(iris, eu, llm, all)
}

// refMatch is Match as docs/routing.md states it, written plainly: among
// the models whose matchers all hold, the longest path_prefix, then one
// with a host, then more headers, then the first configured.
func refMatch(cfg *configs.Config, tbl *Table, host, path []byte, h Headers) *Model {
	reqHost := asciiLower(string(stripPortBytes(host)))
	var best *Model
	var bm configs.Match
	for i := range cfg.Models {
		mc := cfg.Models[i].Match
		if !strings.HasPrefix(string(path), mc.PathPrefix) {
			continue
		}
		if mc.Host != "" && reqHost != strings.ToLower(stripPort(mc.Host)) {
			continue
		}
		ok := true
		for k, want := range mc.Headers {
			ok = ok && string(h.Peek(k)) == want
		}
		if !ok {
			continue
		}
		better := best == nil
		if !better {
			switch {
			case len(mc.PathPrefix) != len(bm.PathPrefix):
				better = len(mc.PathPrefix) > len(bm.PathPrefix)
			case (mc.Host != "") != (bm.Host != ""):
				better = mc.Host != ""
			default:
				better = len(mc.Headers) > len(bm.Headers)
			}
		}
		if better {
			best, bm = tbl.Models()[i], mc
		}
	}
	return best
}

// asciiLower lowers A-Z only: host names on the wire are ASCII.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// markDown sets the endpoints whose bit is set in down not routable.
func markDown(tbl *Table, down uint16) {
	for i, e := range tbl.Endpoints() {
		if down&(1<<(uint(i)%16)) != 0 {
			tbl.SetRoutable(e, false)
		}
	}
}

// FuzzPick checks the request path's decisions on arbitrary request bytes:
// Match agrees with the documented priority rules, Pick returns the
// override's version, ErrUnknownVersion, a routable version of the matched
// model or ErrNoRoutableVersion, sticky picks are the same every time and
// in a freshly built table, a sticky user only moves when their own
// version goes down, and PickEndpoint returns a routable endpoint of the
// version or nil when it has none. Nothing panics.
func FuzzPick(f *testing.F) {
	f.Add([]byte("localhost:8080"), []byte("/v1/models/iris:predict"), []byte(""), []byte("alice"), []byte(""), uint16(0), uint64(1))
	f.Add([]byte("eu.EXAMPLE.com"), []byte("/v1/models/iris"), []byte("safe"), []byte(""), []byte(""), uint16(0), uint64(2))
	f.Add([]byte("EU.example.com:443"), []byte("/v1/models/iris/x"), []byte(""), []byte("bob"), []byte(""), uint16(0x00f8), uint64(3))
	f.Add([]byte("h"), []byte("/chat"), []byte(""), []byte("carol"), []byte("canary"), uint16(0x0400), uint64(4))
	f.Add([]byte("h"), []byte("/chat"), []byte("nope"), []byte("dave"), []byte("canary"), uint16(0xffff), uint64(5))
	f.Add([]byte("[::1]:80"), []byte("/v1/models/iri"), []byte(""), []byte(""), []byte("canary "), uint16(0x0003), uint64(6))
	f.Add([]byte(""), []byte(""), []byte(""), []byte(""), []byte(""), uint16(0), uint64(0))
	f.Add([]byte("eu.example.com:"), []byte("/v1/models/iris"), []byte("v2"), []byte("\xff\x00"), []byte("\x00"), uint16(0x0038), uint64(1<<63))
	cfg := fuzzConfig()
	// Three tables built once and reset to all-routable per input: the one
	// under test, another replica, and one for the rendezvous checks.
	var tables [3]*Table
	for i := range tables {
		tbl, err := Build(cfg, nil)
		if err != nil {
			f.Fatal(err)
		}
		tables[i] = tbl
	}
	f.Fuzz(func(t *testing.T, host, path, override, user, env []byte, down uint16, rnd uint64) {
		for _, tbl := range tables {
			for _, e := range tbl.Endpoints() {
				tbl.SetRoutable(e, true)
			}
		}
		tbl, other, up := tables[0], tables[1], tables[2]
		h := hdrs{"x-env": env, "x-user-id": user}
		m := tbl.Match(host, path, h)
		if want := refMatch(cfg, tbl, host, path, h); m != want {
			t.Fatalf("Match(%q, %q, x-env=%q) = %v, want %v", host, path, env, modelName(m), modelName(want))
		}
		if m == nil {
			return
		}
		markDown(tbl, down)
		var sticky []byte
		if m.Config.Routing.StickyHeader != "" {
			sticky = h.Peek(m.Config.Routing.StickyHeader)
		}

		v, err := m.Pick(override, sticky)
		switch {
		case len(override) > 0:
			want := m.Version(override)
			if want == nil {
				if !errors.Is(err, ErrUnknownVersion) || v != nil {
					t.Fatalf("override %q names no version of %s: got %v, %v", override, m.Name, versionName(v), err)
				}
				return
			}
			if err != nil || v != want {
				t.Fatalf("override %q: got %v, %v", override, versionName(v), err)
			}
		case err != nil:
			if !errors.Is(err, ErrNoRoutableVersion) || v != nil {
				t.Fatalf("Pick: %v, %v", versionName(v), err)
			}
			if m.policy == policyRedistribute {
				for _, w := range m.weighted {
					if w.Routable() {
						t.Fatalf("ErrNoRoutableVersion while %s is routable", w.Name)
					}
				}
			}
		default:
			if v.Model != m || m.Versions[v.Index] != v {
				t.Fatalf("Pick returned %s, not a version of %s", versionName(v), m.Name)
			}
			if !v.Routable() {
				t.Fatalf("Pick returned %s, which is not routable", v.Name)
			}
			if v.Weight <= 0 && v != m.fallback {
				t.Fatalf("Pick returned %s of weight %v without an override", v.Name, v.Weight)
			}
		}

		if v != nil {
			ep := v.PickEndpoint(rnd)
			if (ep == nil) != !v.Routable() {
				t.Fatalf("PickEndpoint(%s) = %v while the version's routable is %v", v.Name, ep, v.Routable())
			}
			if ep != nil && (!ep.Routable() || ep.v != v) {
				t.Fatalf("PickEndpoint(%s) = %s (routable %v, version %s)", v.Name, ep.URL, ep.Routable(), ep.Version)
			}
		}

		if len(override) > 0 || len(sticky) == 0 || !m.sticky {
			return
		}
		// Sticky: the same user gets the same answer again, and from a
		// table built anew (another replica, or after a restart).
		again, err2 := m.Pick(nil, sticky)
		markDown(other, down)
		fresh, err3 := other.Models()[m.Index].Pick(nil, sticky)
		if again != v || !errors.Is(err2, err) || versionName(fresh) != versionName(v) || !errors.Is(err3, err) {
			t.Fatalf("sticky user %q: %s/%v, then %s/%v, fresh table %s/%v",
				sticky, versionName(v), err, versionName(again), err2, versionName(fresh), err3)
		}
		if m.policy != policyRedistribute {
			return
		}
		// Rendezvous: with every endpoint up, the user's version u stays
		// when another version goes down, changes when u goes down, and
		// comes back when u recovers.
		um := up.Models()[m.Index]
		u, err := um.Pick(nil, sticky)
		if err != nil {
			t.Fatalf("all routable, sticky pick failed: %v", err)
		}
		for _, x := range um.weighted {
			if x == u {
				continue
			}
			setAll(up, x, false)
			if got, err := um.Pick(nil, sticky); got != u || err != nil {
				t.Fatalf("user %q moved from %s to %s/%v when %s went down", sticky, u.Name, versionName(got), err, x.Name)
			}
			setAll(up, x, true)
		}
		setAll(up, u, false)
		if moved, err := um.Pick(nil, sticky); moved == u || (err == nil && !moved.Routable()) {
			t.Fatalf("user %q stayed on down %s: %s/%v", sticky, u.Name, versionName(moved), err)
		}
		setAll(up, u, true)
		if back, err := um.Pick(nil, sticky); back != u || err != nil {
			t.Fatalf("user %q did not come back to %s: %s/%v", sticky, u.Name, versionName(back), err)
		}
	})
}

func setAll(tbl *Table, v *Version, ok bool) {
	for _, e := range v.Endpoints {
		tbl.SetRoutable(e, ok)
	}
}

func modelName(m *Model) string {
	if m == nil {
		return "<nil>"
	}
	return m.Name
}

func versionName(v *Version) string {
	if v == nil {
		return "<nil>"
	}
	return v.Name
}
