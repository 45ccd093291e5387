// Package routing makes vane's per-request decisions: which model a request
// belongs to (Table.Match), which version of it serves the request
// (Model.Pick: override, then sticky rendezvous hashing, then exact smooth
// weighted round robin, all over the versions health says are routable), and
// which endpoint of that version takes it (Version.PickEndpoint: least in
// flight of two random). It is pure: no I/O, no clocks, no goroutines, no
// HTTP library; the proxy feeds it request bytes and random numbers, and
// health feeds it routable flags through Table.SetRoutable.
//
// A Table is built from one validated config and is immutable apart from
// endpoint state; the proxy publishes it with one atomic pointer store.
// Build carries endpoint state (in-flight counts, routable flags) from the
// previous Table by key (model, version, endpoint URL), so a weight-only
// reload loses nothing. The request path (Match, Pick, PickEndpoint,
// Begin/End) takes no lock and allocates nothing.
package routing

import (
	"errors"
	"fmt"

	"github.com/vaneproxy/vane/configs"
)

// Errors returned by Model.Pick; test them with errors.Is.
var (
	// ErrUnknownVersion: the override names no configured version of the
	// model (the proxy answers 400).
	ErrUnknownVersion = errors.New("unknown version")
	// ErrNoRoutableVersion: no version can serve the request, or under
	// on_unhealthy: fail the request fell in a down version's share (the
	// proxy answers 503).
	ErrNoRoutableVersion = errors.New("no routable version")
)

// Table is the routing snapshot of one config.
type Table struct {
	models    []*Model
	endpoints []*Endpoint
	byKey     map[endpointKey]*Endpoint
	order     []matcher // models in Match priority order
}

// Build compiles cfg, which must be validated and have its defaults filled,
// into a Table. prev is the Table being replaced, or nil: endpoints whose
// (model, version, URL) key is in prev share its state, so in-flight counts
// and routable flags survive; other endpoints start with nothing in flight
// and routable. Health changes applied to prev while Build runs may be
// missed; apply them to the new Table after it is published.
//
// Build fails only on what it cannot compile: an endpoint URL that is not
// http://host[:port] or h2c://host[:port], a model whose weights are all 0,
// or on_unhealthy: fallback naming no version of the model. Validation
// rejects all of these first.
func Build(cfg *configs.Config, prev *Table) (*Table, error) {
	if cfg == nil {
		return nil, errors.New("building routing table: nil config")
	}
	carried := make(map[endpointKey]*endpointState)
	if prev != nil {
		for _, e := range prev.endpoints {
			carried[endpointKey{e.Model, e.Version, e.URL}] = e.st
		}
	}
	t := &Table{byKey: make(map[endpointKey]*Endpoint)}
	for mi := range cfg.Models {
		m, err := t.buildModel(mi, &cfg.Models[mi], carried)
		if err != nil {
			return nil, fmt.Errorf("building routing table: models[%d] (%s): %w", mi, cfg.Models[mi].Name, err)
		}
		t.models = append(t.models, m)
	}
	t.order = matchOrder(t.models)
	return t, nil
}

func (t *Table) buildModel(index int, mc *configs.Model, carried map[endpointKey]*endpointState) (*Model, error) {
	m := &Model{
		Name:   mc.Name,
		Index:  index,
		Config: mc,
		byName: make(map[string]*Version, len(mc.Versions)),
		sticky: mc.Routing.StickyHeader != "",
	}
	weights := make([]float64, len(mc.Versions))
	for vi := range mc.Versions {
		vc := &mc.Versions[vi]
		w := vc.Weight
		if vc.Shadow { // a shadow gets copies, never weighted traffic
			w = 0
			m.Shadows++
		}
		v := &Version{Name: vc.Name, Index: vi, Weight: w, Model: m, seed: versionSeed(vc.Name)}
		for ei, raw := range vc.Endpoints {
			scheme, addr, err := parseEndpoint(raw)
			if err != nil {
				return nil, fmt.Errorf("versions[%d].endpoints[%d]: %w", vi, ei, err)
			}
			key := endpointKey{mc.Name, vc.Name, raw}
			st := carried[key]
			if st == nil {
				// The same URL listed twice in a version is one backend:
				// both entries share one state.
				st = new(endpointState)
				carried[key] = st
			}
			e := &Endpoint{
				ID: len(t.endpoints), URL: raw, Scheme: scheme, Addr: addr,
				Model: mc.Name, Version: vc.Name, st: st, v: v,
			}
			if _, dup := t.byKey[key]; !dup {
				t.byKey[key] = e
			}
			t.endpoints = append(t.endpoints, e)
			v.Endpoints = append(v.Endpoints, e)
		}
		weights[vi] = w
		m.Versions = append(m.Versions, v)
		m.byName[v.Name] = v
		if w > 0 {
			m.weighted = append(m.weighted, v)
		}
	}
	slots, ok := quantise(weights)
	if !ok {
		return nil, errors.New("no version has weight > 0")
	}
	m.slots = slots
	switch mc.Routing.OnUnhealthy {
	case configs.OnUnhealthyFallback:
		m.policy = policyFallback
		m.fallback = m.byName[mc.Routing.Fallback]
		if m.fallback == nil {
			return nil, fmt.Errorf("routing.fallback: no version named %q", mc.Routing.Fallback)
		}
	case configs.OnUnhealthyFail:
		m.policy = policyFail
	default: // redistribute, the documented default
		m.policy = policyRedistribute
	}
	m.rebuild()
	return m, nil
}

// Models returns the models in config order; Models()[i].Index == i. The
// slice is the Table's own: do not modify it.
func (t *Table) Models() []*Model { return t.models }

// Endpoints returns every endpoint of every model, ordered by model, version
// and config order; Endpoints()[i].ID == i. The slice is the Table's own: do
// not modify it.
func (t *Table) Endpoints() []*Endpoint { return t.endpoints }

// SetRoutable marks e routable or not and, if that changes what its model
// routes to, publishes the model's new pick state (weighted cycle, shares,
// routable endpoints). It is meant for health checks, off the request path;
// it is safe concurrently with Pick, PickEndpoint and other SetRoutable
// calls. e may come from an older Table: it is then matched by key, so a
// health checker holding endpoints across a reload still updates this one.
// An endpoint this Table does not have only gets its flag set.
func (t *Table) SetRoutable(e *Endpoint, ok bool) {
	if e.ID >= len(t.endpoints) || t.endpoints[e.ID] != e {
		own := t.byKey[endpointKey{e.Model, e.Version, e.URL}]
		if own == nil {
			e.st.down.Store(!ok)
			return
		}
		e = own
	}
	e.v.Model.setRoutable(e, e.v, ok)
}

// SyncRoutable sets the routable flag of every endpoint of t from
// routable and publishes each model whose flags changed once, however many
// of its endpoints changed: a reload that brings thousands of endpoints
// costs one pick-state rebuild per model, not one per endpoint.
func (t *Table) SyncRoutable(routable func(e *Endpoint) bool) {
	for _, m := range t.models {
		m.mu.Lock()
		changed := false
		for _, v := range m.Versions {
			for _, e := range v.Endpoints {
				if ok := routable(e); e.Routable() != ok {
					e.st.down.Store(!ok)
					changed = true
				}
			}
		}
		if changed || !m.statePublishedMatches() {
			m.rebuild()
		}
		m.mu.Unlock()
	}
}

// statePublishedMatches reports whether m's published pick state routes to
// exactly the endpoints flagged routable (flags are shared with older
// tables, whose SetRoutable may have moved one). Callers hold m.mu.
func (m *Model) statePublishedMatches() bool {
	s := m.state.Load()
	for i, v := range m.Versions {
		n := 0
		for _, e := range v.Endpoints {
			if e.Routable() {
				n++
			}
		}
		if n != len(s.up[i]) {
			return false
		}
	}
	return true
}
