package routing

import (
	"sync"
	"sync/atomic"

	"github.com/vaneproxy/vane/configs"
)

// Model is one routed model of a Table. Its configuration is immutable; what
// health changes (which versions and endpoints are routable, the weighted
// cycle, the shares) is one pickState published atomically, so Pick never
// locks.
type Model struct {
	// Name is the model's configured name.
	Name string
	// Index is the model's position in Table.Models() and in the config.
	Index int
	// Config is the model's validated config; treat it as read-only.
	Config *configs.Model
	// Versions are in config order; Versions[i].Index == i.
	Versions []*Version
	// Shadows is the number of shadow versions (versions[].shadow), so
	// the request path skips its shadow copies at once when it is 0.
	Shadows int

	byName   map[string]*Version
	weighted []*Version // versions with weight > 0, in config order
	slots    []int      // quantised weights, aligned with Versions
	policy   policy
	fallback *Version // on_unhealthy: fallback; nil under other policies
	sticky   bool     // routing.sticky_header is set

	next atomic.Uint64 // position in the weighted cycle, shared by all picks

	mu    sync.Mutex // serialises pickState rebuilds (SetRoutable); Pick never takes it
	state atomic.Pointer[pickState]
}

// Version is one version of a Model.
type Version struct {
	// Name is the version's configured name.
	Name string
	// Index is the version's position in Model.Versions.
	Index int
	// Weight is the configured relative weight; 0 means the version is
	// reached only by override or as the fallback.
	Weight float64
	// Model is the owning model.
	Model *Model
	// Endpoints are in config order.
	Endpoints []*Endpoint

	seed uint64 // versionSeed(Name), for sticky choice
}

type policy uint8

const (
	policyRedistribute policy = iota
	policyFallback
	policyFail
)

// pickState is what health decides, rebuilt whole on every change and never
// mutated after publication.
type pickState struct {
	up       [][]*Endpoint // per version: its routable endpoints
	routable []bool        // per version: len(up[i]) > 0
	cycle    []int         // weighted cycle: version indexes or failSlot
	shares   []float64     // per version, from the same slots as cycle
	none     bool          // no version can take weighted traffic
}

// Version returns the version named name, or nil when the model has none.
// It allocates nothing.
func (m *Model) Version(name []byte) *Version {
	return m.byName[string(name)]
}

// Pick chooses the version of one request:
//
//  1. override (the X-Vane-Version header) non-empty: that version, or
//     ErrUnknownVersion if the model has none of that name. An override pins
//     the version even when it is not routable, because whoever sets it (QA,
//     a replay) asked for exactly that version; the caller then finds no
//     endpoint in PickEndpoint and answers with an error naming it instead
//     of silently serving another version.
//  2. sticky (the sticky header's value) non-empty and the model has a
//     sticky_header: weighted rendezvous hashing, see pickSticky.
//  3. otherwise: the next slot of the smooth weighted round-robin cycle.
//
// Without an override, versions with weight 0 are never chosen (except as
// the fallback), and when no version can take traffic Pick returns
// ErrNoRoutableVersion at once. Under on_unhealthy: fail a down version's
// share also answers ErrNoRoutableVersion. Pick allocates nothing.
func (m *Model) Pick(override, sticky []byte) (*Version, error) {
	if len(override) > 0 {
		if v := m.Version(override); v != nil {
			return v, nil
		}
		return nil, ErrUnknownVersion
	}
	s := m.state.Load()
	if s.none {
		return nil, ErrNoRoutableVersion
	}
	if len(sticky) > 0 && m.sticky {
		return m.pickSticky(s, sticky)
	}
	return m.pickWeighted(s)
}

// Shares returns each version's fraction (0..1) of the model's weighted
// traffic after health and on_unhealthy, aligned with Versions. The
// fractions sum to 1, except under on_unhealthy: fail, where a down
// version's share answers errors and is missing from the sum, and when no
// version can serve, where all are 0. They are exact for the weighted cycle
// (quantised to 0.01 %); sticky traffic follows the same weights in
// expectation. The result is a fresh copy.
func (m *Model) Shares() []float64 {
	return append([]float64(nil), m.state.Load().shares...)
}

// Routable reports whether v has at least one routable endpoint, as last
// published for its model.
func (v *Version) Routable() bool {
	return v.Model.state.Load().routable[v.Index]
}

// rebuild publishes a pickState computed from the endpoints' current
// routable flags. Callers hold m.mu, or own m exclusively (Build).
func (m *Model) rebuild() {
	n := len(m.Versions)
	s := &pickState{
		up:       make([][]*Endpoint, n),
		routable: make([]bool, n),
		shares:   make([]float64, n),
	}
	for i, v := range m.Versions {
		for _, e := range v.Endpoints {
			if e.Routable() {
				s.up[i] = append(s.up[i], e)
			}
		}
		s.routable[i] = len(s.up[i]) > 0
	}

	// eff holds each version's slots after health, and last the fail share.
	eff := make([]int, n+1)
	served := 0
	for i, q := range m.slots {
		switch {
		case q == 0:
		case s.routable[i]:
			eff[i] += q
			served += q
		case m.policy == policyFallback && m.fallback != nil && s.routable[m.fallback.Index]:
			eff[m.fallback.Index] += q
			served += q
		case m.policy == policyFail:
			eff[n] += q
		default:
			// redistribute: dropping the slots spreads them over the
			// routable versions in proportion to their own.
		}
	}
	if served == 0 {
		s.none = true
		m.state.Store(s)
		return
	}
	total := served + eff[n]
	ids := make([]int, n+1)
	for i := range m.Versions {
		ids[i] = i
		s.shares[i] = float64(eff[i]) / float64(total)
	}
	ids[n] = failSlot
	s.cycle = swrrCycle(ids, eff)
	m.state.Store(s)
}

// setRoutable flips e's flag and republishes m's pickState if the published
// one disagrees.
func (m *Model) setRoutable(e *Endpoint, v *Version, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e.st.down.Store(!ok)
	published := false
	for _, u := range m.state.Load().up[v.Index] {
		if u == e {
			published = true
			break
		}
	}
	if published != ok {
		m.rebuild()
	}
}
