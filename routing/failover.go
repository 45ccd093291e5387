package routing

// Failover is the version a request moves to when from has no endpoint
// left to admit it, by the model's on_unhealthy rule: redistribute picks
// among the other routable weighted versions by weight, fallback names
// its fallback version, fail moves nowhere. tried is a bit set of the
// version indexes (mod 64) the request has tried already; such a version
// is never returned. rnd in [0, 1) draws the weighted choice. nil means
// there is nowhere to go. Requests pinned by an override do not fail
// over; callers do not ask for them.
func (m *Model) Failover(from *Version, tried uint64, rnd float64) *Version {
	ok := func(v *Version) bool {
		return v != nil && v != from && v.Routable() && tried&(1<<(uint(v.Index)&63)) == 0
	}
	switch m.policy {
	case policyFallback:
		if ok(m.fallback) {
			return m.fallback
		}
		return nil
	case policyFail:
		return nil
	}
	total := 0.0
	for _, v := range m.weighted {
		if ok(v) {
			total += v.Weight
		}
	}
	if total == 0 {
		return nil
	}
	x := rnd * total
	var last *Version
	for _, v := range m.weighted {
		if ok(v) {
			last = v
			if x -= v.Weight; x < 0 {
				return v
			}
		}
	}
	return last
}
