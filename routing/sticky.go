package routing

import "math"

// Sticky choice: weighted rendezvous hashing.
//
// For a sticky value k (say a user id), every version v with weight w_v > 0
// draws u_v in (0,1) from a 64-bit hash of (k, v's name) and scores
//
//	score_v = -w_v / ln(u_v)
//
// The highest score wins. -ln(u_v) is an Exp(1) variable, so score_v is the
// inverse of an Exp(w_v) variable and v wins with probability w_v / Σw:
// users split in proportion to the weights. Because each version's score
// depends only on the user and that version, a change touches only the users
// it must:
//
//   - raising v's weight moves users to v only, and only the share v gains;
//     lowering it moves only some of v's users away, spread over the other
//     versions by their weights;
//   - removing a version (or losing it to health under redistribute) moves
//     only its users, to their second-best version; when it comes back those
//     same users return, and nobody else moves;
//   - adding a version moves users to it only.
//
// Hashing onto a line of weight intervals would instead shift the users of
// every version behind a changed one.
//
// The hash is FNV-1a followed by the splitmix64 finalizer, with no random
// seed: the same user lands on the same version in every process and after
// restarts, so replicas of the sidecar agree. Sticky choice uses the
// configured weights exactly; weighted (non-sticky) choice uses them
// quantised to 0.01 %, which is what Shares reports.

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// mix64 is the splitmix64 finalizer: a bijection whose every output bit
// depends on every input bit, which FNV-1a alone does not give.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// stickyHash hashes a sticky value once per pick.
func stickyHash(key []byte) uint64 {
	h := uint64(fnvOffset64)
	for _, c := range key {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return mix64(h)
}

// versionSeed is a version's stable hash, computed once at Build.
func versionSeed(name string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= fnvPrime64
	}
	return mix64(h)
}

// stickyScore is v's rendezvous score for the user whose stickyHash is h.
func stickyScore(h uint64, v *Version) float64 {
	x := mix64(h ^ v.seed)
	// The top 53 bits, centred in their interval, give u strictly in (0,1),
	// so ln(u) is finite and negative.
	u := (float64(x>>11) + 0.5) * (1.0 / (1 << 53))
	return v.Weight / -math.Log(u)
}

// rendezvous returns the best-scoring version among those with weight > 0,
// only routable ones when upOnly is set; nil when none qualifies.
func (m *Model) rendezvous(s *pickState, h uint64, upOnly bool) *Version {
	var best *Version
	bestScore := -1.0
	for _, v := range m.weighted {
		if upOnly && !s.routable[v.Index] {
			continue
		}
		if sc := stickyScore(h, v); sc > bestScore {
			best, bestScore = v, sc
		}
	}
	return best
}

// pickSticky applies on_unhealthy to the user's rendezvous winner:
//
//   - redistribute: the winner among routable versions, i.e. the user's
//     best version that is up, so they return when their first choice
//     recovers;
//   - fallback: the winner among all weighted versions; if it is down, the
//     fallback version; if that is down too, as redistribute;
//   - fail: the winner among all weighted versions; if it is down,
//     ErrNoRoutableVersion.
func (m *Model) pickSticky(s *pickState, key []byte) (*Version, error) {
	h := stickyHash(key)
	if m.policy != policyRedistribute {
		v := m.rendezvous(s, h, false)
		if s.routable[v.Index] {
			return v, nil
		}
		if m.policy == policyFail {
			return nil, ErrNoRoutableVersion
		}
		if m.fallback != nil && s.routable[m.fallback.Index] {
			return m.fallback, nil
		}
	}
	if v := m.rendezvous(s, h, true); v != nil {
		return v, nil
	}
	return nil, ErrNoRoutableVersion
}
