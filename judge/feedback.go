package judge

import (
	"strings"
	"sync"
	"time"
)

// Limits of one Store entry.
const (
	// MaxVersionsPerID is the most predictions one request id holds: the
	// served version's and those of up to three shadows.
	MaxVersionsPerID = 4
	// MaxRows is the most rows of one prediction kept; labels beyond it
	// are not scored.
	MaxRows = 64
	// MaxIDLen bounds the request ids stored; predictions of longer ids
	// are not kept.
	MaxIDLen = 128
)

// The results of one label, as counted in vane_feedback_total.
const (
	Joined  = "joined"  // scored against every prediction of its id
	Unknown = "unknown" // no prediction for the id (never sampled, or forgotten)
	Expired = "expired" // the prediction is older than the TTL
	Invalid = "invalid" // no request id, or a label that is not a value
)

// ValuesPerEntry is the average number of values a Store may hold per
// request id: besides at most maxEntries ids it holds at most
// ValuesPerEntry·maxEntries values (oldest ids forgotten first), so a
// flood of large batch predictions cannot multiply its memory by
// MaxVersionsPerID·MaxRows.
const ValuesPerEntry = 4

// Store joins ground-truth labels with the predictions vane recorded, by
// request id, and keeps each version's Accuracy. It holds at most
// maxEntries request ids and ValuesPerEntry·maxEntries values; the oldest
// id is forgotten first. A label is scored once: the entry is gone after
// its join. Safe for concurrent use.
type Store struct {
	now func() time.Time
	ttl time.Duration

	mu     sync.Mutex        // guards everything below
	ring   []string          // request ids in insertion order, a circle of maxEntries
	next   int               // the ring slot the next new id takes
	ids    map[string]*entry // live entries by request id
	values int               // values held by the live entries
	acc    map[versionKey]*Accuracy
	names  map[string]string // the model and version names entries share (see name)
}

// maxNames bounds Store.names: model and version names come from the
// config, so they are few; past the bound each entry keeps its own copy.
const maxNames = 1 << 16

type versionKey struct{ model, version string }

// entry is what the store holds for one request id: its model, when its
// first prediction arrived, the ring slot it took, and the predictions.
type entry struct {
	model string
	at    time.Time
	slot  int
	preds []prediction
	n     int // values in preds
	// pred0 and value0 back preds and its first prediction's values in
	// the common case (one version's prediction of one row): Put runs
	// for every sampled request, and the entry is then its only
	// allocation besides the request id.
	pred0  [1]prediction
	value0 [1]Value
}

// prediction is one version's answer to the request: a value per row.
type prediction struct {
	version string
	values  []Value
}

// NewStore returns a store of at most maxEntries (>= 1) request ids whose
// predictions wait ttl for their labels. now is the clock.
func NewStore(maxEntries int, ttl time.Duration, now func() time.Time) *Store {
	return &Store{now: now, ttl: ttl, ring: make([]string, max(maxEntries, 1)),
		ids: map[string]*entry{}, acc: map[versionKey]*Accuracy{}, names: map[string]string{}}
}

// Len returns the number of request ids held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// Put records version's prediction (one value per row) for a request of
// model. A second prediction of the same version replaces the first. It
// reports whether the prediction was kept.
func (s *Store) Put(model, version, requestID string, values []Value) bool {
	if requestID == "" || len(requestID) > MaxIDLen || len(values) == 0 {
		return false
	}
	// The values are copied before the lock is taken, clipped and their
	// strings cloned (the caller's may live in reused buffers); one value
	// stays on the stack until it lands in its entry.
	var one Value
	var many []Value
	if len(values) == 1 {
		one = keep(values[0])
	} else {
		many = make([]Value, min(len(values), MaxRows))
		for i := range many {
			many[i] = keep(values[i])
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.ids[requestID]
	if e == nil || e.model != model {
		if e != nil { // the same id on another model: the newer wins
			s.drop(requestID, e)
		}
		if old := s.ring[s.next]; old != "" {
			if o := s.ids[old]; o != nil && o.slot == s.next {
				s.drop(old, o)
			}
		}
		e = &entry{model: s.name(model), at: s.now(), slot: s.next}
		e.preds = e.pred0[:0]
		id := strings.Clone(requestID)
		s.ring[s.next] = id
		s.next = (s.next + 1) % len(s.ring)
		s.ids[id] = e
	}
	var p *prediction
	for i := range e.preds {
		if e.preds[i].version == version {
			p = &e.preds[i]
			break
		}
	}
	if p == nil {
		if len(e.preds) >= MaxVersionsPerID {
			return false
		}
		e.preds = append(e.preds, prediction{version: s.name(version)})
		p = &e.preds[len(e.preds)-1]
		if len(e.preds) == 1 {
			p.values = e.value0[:0]
		}
	}
	n := len(values)
	if many != nil {
		n = len(many)
	}
	e.n += n - len(p.values)
	s.values += n - len(p.values)
	switch {
	case many != nil:
		p.values = many
	case cap(p.values) >= 1:
		p.values = append(p.values[:0], one)
	default:
		p.values = []Value{one}
	}
	return !s.shrink(e)
}

// keep is v as the store keeps it: clipped, its string its own.
func keep(v Value) Value {
	v = clip(v)
	v.Cat = strings.Clone(v.Cat)
	return v
}

// name returns the store's copy of a model or version name: entries share
// one copy of each name rather than clone it per request.
func (s *Store) name(n string) string {
	if c, ok := s.names[n]; ok {
		return c
	}
	c := strings.Clone(n)
	if len(s.names) < maxNames {
		s.names[c] = c
	}
	return c
}

// drop forgets the entry of id.
func (s *Store) drop(id string, e *entry) {
	delete(s.ids, id)
	s.values -= e.n
	if s.ring[e.slot] == id {
		s.ring[e.slot] = ""
	}
}

// shrink forgets the oldest entries until the values fit the budget,
// sparing keep unless it is the only one left; it reports whether keep
// was forgotten.
func (s *Store) shrink(keep *entry) (dropped bool) {
	budget := ValuesPerEntry * len(s.ring)
	for k, n := s.next, 0; s.values > budget && n < len(s.ring); k, n = (k+1)%len(s.ring), n+1 {
		id := s.ring[k]
		if id == "" {
			continue
		}
		if e := s.ids[id]; e != nil && e.slot == k && (e != keep || len(s.ids) == 1) {
			s.drop(id, e)
			dropped = dropped || e == keep
		}
	}
	return dropped
}

// Values returns the number of prediction values held.
func (s *Store) Values() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.values
}

// Label joins a label (one value per row) with the predictions of
// requestID and scores each of them row by row, up to the shorter side.
// It returns the result and the model of the id ("" when unknown).
func (s *Store) Label(requestID string, label []Value) (result, model string) {
	if requestID == "" || len(label) == 0 {
		return Invalid, ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.ids[requestID]
	if e == nil {
		return Unknown, ""
	}
	s.drop(requestID, e)
	if s.now().Sub(e.at) > s.ttl {
		return Expired, e.model
	}
	for _, p := range e.preds {
		k := versionKey{e.model, p.version}
		a := s.acc[k]
		if a == nil {
			a = new(Accuracy)
			s.acc[k] = a
		}
		for i := range min(len(p.values), len(label)) {
			a.Add(p.values[i], label[i])
		}
	}
	return Joined, e.model
}

// Accuracy returns the report of one version; ok is false when no label
// has been joined with its predictions.
func (s *Store) Accuracy(model, version string) (r AccuracyReport, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.acc[versionKey{model, version}]
	if a == nil {
		return AccuracyReport{}, false
	}
	return a.Report(), true
}
