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
// of up to inlineID bytes, predictions of one row each) it neither
// allocates nor leaves the garbage collector anything to scan: entries
// live in pointer-free slots, allocated a chunk at a time and reused in
// ring order, with names and categorical values as indices into a table of
// interned strings; they are found through a map from a seeded hash of the
// id to the slot. Longer ids and predictions of other sizes are kept on
// the side, by slot.
type Store struct {
	now  func() time.Time
	ttl  time.Duration
	seed maphash.Seed

	mu         sync.Mutex             // guards everything below
	slots      [][]entry              // the ring of maxEntries entries, in chunks allocated on first use
	size       int                    // maxEntries
	next       int                    // the ring slot the next new id takes
	ids        map[uint64]int32       // live entries' ring slots by the hash of their id
	longIDs    map[int32]string       // the ids longer than inlineID, by slot
	bigPreds   map[int32][]prediction // the predictions of entries that are not inline, by slot
	values     int                    // values held by the live entries
	acc        map[versionKey]*Accuracy
	names      []string          // interned model and version names and categorical values
	nameIx     map[string]uint32 // names' indices
	recent     [4]uint32         // names intern returned lately, index + 1 (0: none)
	nextRecent int               // the recent slot the next name takes
}

// maxNames bounds the interned strings: model and version names come from
// the config, so they are few; categorical values are interned while the
// table is under half full, and kept on the side after that.
const maxNames = 1 << 16

// chunkSlots is how many entries the store allocates at a time.
const chunkSlots = 1024

// inlineID is the longest request id an entry holds in its slot (vane's
// own ids are 32 bytes).
const inlineID = 40

type versionKey struct{ model, version string }

// entry is what the store holds for one request id, pointer-free: its
// id, model, when its first prediction arrived, and (inline) one value
// per version. The zero entry is a free slot.
type entry struct {
	hash     uint64
	at       int64 // Unix ns of the first prediction
	n        int32 // values held
	model    uint32
	used     bool
	bigPreds bool  // the predictions are in Store.bigPreds
	idLen    uint8 // 0: the id is in Store.longIDs
	npred    uint8 // inline predictions
	id       [inlineID]byte
	preds    [MaxVersionsPerID]inlinePred
}

// inlinePred is one version's prediction of one row.
type inlinePred struct {
	version uint32
	cat     uint32 // the categorical value's name index + 1; 0: numeric
	num     float64
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
		ids:   map[uint64]int32{}, longIDs: map[int32]string{}, bigPreds: map[int32][]prediction{},
		acc: map[versionKey]*Accuracy{}, nameIx: map[string]uint32{}}
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

// holds reports whether slot k holds requestID.
func (s *Store) holds(k int, requestID string) bool {
	e := s.slot(k)
	if len(requestID) > inlineID {
		return e.used && e.idLen == 0 && s.longIDs[int32(k)] == requestID
	}
	return e.used && int(e.idLen) == len(requestID) && string(e.id[:e.idLen]) == requestID
}

// find returns the slot holding requestID, or -1.
func (s *Store) find(requestID string, h uint64) int {
	if k, ok := s.ids[h]; ok && s.holds(int(k), requestID) {
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
	// Several values are copied before the lock is taken, clipped and
	// their strings cloned (the caller's may live in reused buffers); one
	// value is interned or cloned under the lock.
	var one Value
	var many []Value
	if len(values) == 1 {
		one = clip(values[0])
	} else {
		many = make([]Value, min(len(values), MaxRows))
		for i := range many {
			many[i] = keep(values[i])
		}
	}
	h := maphash.String(s.seed, requestID)
	s.mu.Lock()
	defer s.mu.Unlock()
	mi, ok1 := s.intern(model, maxNames)
	vi, ok2 := s.intern(version, maxNames)
	if !ok1 || !ok2 {
		return false
	}
	k := -1
	if o, ok := s.ids[h]; ok {
		// Another id with the same 64-bit hash, or the same id on another
		// model: the newer wins.
		if s.holds(int(o), requestID) && s.slot(int(o)).model == mi {
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
		*e = entry{used: true, hash: h, model: mi, at: s.now().UnixNano()}
		if len(requestID) <= inlineID {
			e.idLen = uint8(copy(e.id[:], requestID))
		} else {
			s.longIDs[int32(k)] = strings.Clone(requestID)
		}
		s.ids[h] = int32(k)
	}
	e := s.slot(k)
	if many == nil && !e.bigPreds {
		if p, ok := s.inline(e, vi, one); ok {
			if p == nil { // a new version's
				if e.npred >= MaxVersionsPerID {
					return false
				}
				e.n++
				s.values++
				p = &e.preds[e.npred]
				e.npred++
			}
			c, _ := s.catIndex(one)
			*p = inlinePred{version: vi, cat: c, num: one.Num}
			return !s.shrink(k)
		}
	}
	return s.putBig(k, e, version, one, many)
}

// inline finds e's inline prediction of version vi (nil: none yet); ok
// is false when v cannot be held inline.
func (s *Store) inline(e *entry, vi uint32, v Value) (p *inlinePred, ok bool) {
	if _, ok := s.catIndex(v); !ok {
		return nil, false
	}
	for i := range e.npred {
		if e.preds[i].version == vi {
			return &e.preds[i], true
		}
	}
	return nil, true
}

// catIndex interns v's category: 0 for a number, the name index + 1 for a
// category; false when the table has no room for it.
func (s *Store) catIndex(v Value) (uint32, bool) {
	if !v.IsCat {
		return 0, true
	}
	i, ok := s.intern(v.Cat, maxNames/2)
	return i + 1, ok
}

// putBig records a prediction in the side table of slot k, moving e's
// inline predictions there first.
func (s *Store) putBig(k int, e *entry, version string, one Value, many []Value) bool {
	preds := s.bigPreds[int32(k)]
	if !e.bigPreds {
		preds = make([]prediction, 0, e.npred+1)
		for _, p := range e.preds[:e.npred] {
			preds = append(preds, prediction{version: s.names[p.version], values: []Value{s.value(p)}})
		}
		e.bigPreds, e.npred = true, 0
	}
	if many == nil {
		one.Cat = strings.Clone(one.Cat)
		many = []Value{one}
	}
	kept := false
	for i := range preds {
		if preds[i].version == version {
			e.n += int32(len(many) - len(preds[i].values))
			s.values += len(many) - len(preds[i].values)
			preds[i].values = many
			kept = true
		}
	}
	if !kept && len(preds) < MaxVersionsPerID {
		name, _ := s.intern(version, maxNames)
		preds = append(preds, prediction{version: s.names[name], values: many})
		e.n += int32(len(many))
		s.values += len(many)
		kept = true
	}
	s.bigPreds[int32(k)] = preds
	return kept && !s.shrink(k)
}

// value is an inline prediction's value.
func (s *Store) value(p inlinePred) Value {
	if p.cat == 0 {
		return Num(p.num)
	}
	return Value{Num: p.num, Cat: s.names[p.cat-1], IsCat: true}
}

// keep is v as the store keeps it: clipped, its string its own.
func keep(v Value) Value {
	v = clip(v)
	v.Cat = strings.Clone(v.Cat)
	return v
}

// intern returns the index of n in the table of names, adding a copy of
// it while the table holds fewer than limit; false when it is full.
func (s *Store) intern(n string, limit int) (uint32, bool) {
	// Predictions are mostly of a few models and versions: the names
	// returned lately answer without a map lookup.
	for _, r := range s.recent {
		if r != 0 && s.names[r-1] == n {
			return r - 1, true
		}
	}
	i, ok := s.nameIx[n]
	if !ok {
		if len(s.names) >= limit {
			return 0, false
		}
		i = uint32(len(s.names))
		c := strings.Clone(n)
		s.names = append(s.names, c)
		s.nameIx[c] = i
	}
	s.recent[s.nextRecent] = i + 1
	s.nextRecent = (s.nextRecent + 1) % len(s.recent)
	return i, true
}

// drop forgets the entry in ring slot k, freeing the slot.
func (s *Store) drop(k int) {
	e := s.slot(k)
	delete(s.ids, e.hash)
	s.values -= int(e.n)
	if e.bigPreds {
		delete(s.bigPreds, int32(k))
	}
	if e.idLen == 0 {
		delete(s.longIDs, int32(k))
	}
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
	model = s.names[e.model]
	defer s.drop(k) // after the scoring, which reads the entry
	if s.now().UnixNano()-e.at > int64(s.ttl) {
		return Expired, model
	}
	score := func(version string, values []Value) {
		vk := versionKey{model, version}
		a := s.acc[vk]
		if a == nil {
			a = new(Accuracy)
			s.acc[vk] = a
		}
		for i := range min(len(values), len(label)) {
			a.Add(values[i], label[i])
		}
	}
	if e.bigPreds {
		for _, p := range s.bigPreds[int32(k)] {
			score(p.version, p.values)
		}
		return Joined, model
	}
	for _, p := range e.preds[:e.npred] {
		score(s.names[p.version], []Value{s.value(p)})
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
