package judge

import (
	"hash/maphash"
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
//
// Put runs for every sampled request, so in the common case (a request id
// of up to inlineID bytes, one version's prediction of one row) it does
// not allocate: entries live in slots allocated a chunk at a time and
// reused in ring order, found through a map of id hashes that holds no
// pointers for the garbage collector to scan.
type Store struct {
	now  func() time.Time
	ttl  time.Duration
	seed maphash.Seed

	mu     sync.Mutex       // guards everything below
	slots  [][]entry        // the ring of maxEntries entries, in chunks allocated on first use
	size   int              // maxEntries
	next   int              // the ring slot the next new id takes
	ids    map[uint64]int32 // live entries' ring slots by the hash of their id
	values int              // values held by the live entries
	acc    map[versionKey]*Accuracy
	names  map[string]string // the model and version names entries share (see name)
	recent [2]string         // the names name returned last
}

// maxNames bounds Store.names: model and version names come from the
// config, so they are few; past the bound each entry keeps its own copy.
const maxNames = 1 << 16

// chunkSlots is how many entries the store allocates at a time.
const chunkSlots = 1024

// inlineID is the longest request id an entry holds without an allocation
// (vane's own ids are 32 bytes).
const inlineID = 40

type versionKey struct{ model, version string }

// entry is what the store holds for one request id: its id, model, when
// its first prediction arrived, and the predictions. The zero entry is a
// free slot.
type entry struct {
	used   bool
	hash   uint64
	idLen  uint8
	id     [inlineID]byte // the id when it is at most inlineID bytes
	longID string         // else the id
	model  string
	at     time.Time
	preds  []prediction
	n      int // values in preds
	// pred0 and value0 back preds and its first prediction's values in
	// the common case (one version's prediction of one row).
	pred0  [1]prediction
	value0 [1]Value
}

// is reports whether e holds the id requestID.
func (e *entry) is(requestID string) bool {
	if len(requestID) > inlineID {
		return e.longID == requestID
	}
	return e.longID == "" && string(e.id[:e.idLen]) == requestID
}

// prediction is one version's answer to the request: a value per row.
type prediction struct {
	version string
	values  []Value
}

// NewStore returns a store of at most maxEntries (>= 1) request ids whose
// predictions wait ttl for their labels. now is the clock.
func NewStore(maxEntries int, ttl time.Duration, now func() time.Time) *Store {
	size := max(maxEntries, 1)
	return &Store{now: now, ttl: ttl, seed: maphash.MakeSeed(), size: size,
		slots: make([][]entry, (size+chunkSlots-1)/chunkSlots),
		ids:   map[uint64]int32{}, acc: map[versionKey]*Accuracy{}, names: map[string]string{}}
}

// slot returns ring slot k, allocating its chunk on first use.
func (s *Store) slot(k int) *entry {
	c := s.slots[k/chunkSlots]
	if c == nil {
		c = make([]entry, min(chunkSlots, s.size-k/chunkSlots*chunkSlots))
		s.slots[k/chunkSlots] = c
	}
	return &c[k%chunkSlots]
}

// find returns the slot holding requestID, or -1.
func (s *Store) find(requestID string, h uint64) int {
	if k, ok := s.ids[h]; ok && s.slot(int(k)).is(requestID) {
		return int(k)
	}
	return -1
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
	h := maphash.String(s.seed, requestID)
	s.mu.Lock()
	defer s.mu.Unlock()
	k := -1
	if o, ok := s.ids[h]; ok {
		// Another id with the same 64-bit hash, or the same id on another
		// model: the newer wins.
		if e := s.slot(int(o)); e.is(requestID) && e.model == model {
			k = int(o)
		} else {
			s.drop(int(o))
		}
	}
	if k < 0 {
		k = s.next
		s.next = (s.next + 1) % s.size
		e := s.slot(k)
		if e.used {
			s.drop(k)
		}
		e.used, e.hash, e.model, e.at = true, h, s.name(model), s.now()
		if len(requestID) <= inlineID {
			e.idLen = uint8(copy(e.id[:], requestID))
		} else {
			e.longID = strings.Clone(requestID)
		}
		e.preds = e.pred0[:0]
		s.ids[h] = int32(k)
	}
	e := s.slot(k)
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
	return !s.shrink(k)
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
	// Consecutive predictions are mostly of one model and version: the
	// last two names answer without a map lookup.
	if n == s.recent[0] {
		return s.recent[0]
	}
	if n == s.recent[1] {
		return s.recent[1]
	}
	c, ok := s.names[n]
	if !ok {
		c = strings.Clone(n)
		if len(s.names) < maxNames {
			s.names[c] = c
		}
	}
	s.recent[0], s.recent[1] = c, s.recent[0]
	return c
}

// drop forgets the entry in ring slot k, freeing the slot.
func (s *Store) drop(k int) {
	e := s.slot(k)
	delete(s.ids, e.hash)
	s.values -= e.n
	*e = entry{}
}

// shrink forgets the oldest entries until the values fit the budget,
// sparing slot keep unless it is the only one left; it reports whether
// keep was forgotten.
func (s *Store) shrink(keep int) (dropped bool) {
	budget := ValuesPerEntry * s.size
	for k, n := s.next, 0; s.values > budget && n < s.size; k, n = (k+1)%s.size, n+1 {
		if c := s.slots[k/chunkSlots]; c != nil && c[k%chunkSlots].used && (k != keep || len(s.ids) == 1) {
			s.drop(k)
			dropped = dropped || k == keep
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
	h := maphash.String(s.seed, requestID)
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.find(requestID, h)
	if k < 0 {
		return Unknown, ""
	}
	e := s.slot(k)
	model = e.model
	defer s.drop(k) // after the scoring, which reads the entry
	if s.now().Sub(e.at) > s.ttl {
		return Expired, model
	}
	for _, p := range e.preds {
		vk := versionKey{model, p.version}
		a := s.acc[vk]
		if a == nil {
			a = new(Accuracy)
			s.acc[vk] = a
		}
		for i := range min(len(p.values), len(label)) {
			a.Add(p.values[i], label[i])
		}
	}
	return Joined, model
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
