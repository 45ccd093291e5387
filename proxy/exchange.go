package proxy

import (
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/vaneproxy/vane/routing"
)

// exchange is one proxied request, whichever transport carried it. Its
// steps, in the order a request takes them, are written once here:
//
//	route   which model the request is for
//	pick    which version answers (weights, sticky key, override)
//	admit   which endpoint of it takes the attempt (breaker, limit), moving
//	        to another version when the picked one admits none
//	settle  what the attempt's outcome means: the breaker is told, and a
//	        retry is decided within the policy and the budget
//	finish  the answer is counted
//
// Sending the attempt and writing the answer are the transport's (http1.go
// for fasthttp, relay.go for HTTP/2); so are reading the request's bodies
// for the monitor and the shadows, which finish hands on.
type exchange struct {
	s    *Server
	snap *snapshot
	mod  *routing.Model
	pol  *policy
	a    attempt
	rid  []byte
	// start is when the request arrived; deadline is start plus the
	// model's timeout (or the client's own gRPC deadline, if sooner).
	start, deadline time.Time
	// grpc marks a gRPC call: its answer's grpc-status decides success.
	grpc bool

	// The attempt under way, or the last one: its endpoint and the
	// metrics of its version. ep is nil until one was admitted.
	ep *routing.Endpoint
	vm *versionMetrics
	// tries counts the attempts sent; permits the retry permits taken
	// from the budget; versions the version indexes tried (a bit each).
	tries, permits int
	versions       uint64
	budgeted       bool
}

// init readies x for a request that arrived at start.
func (x *exchange) init(s *Server, snap *snapshot, rid []byte, start time.Time) {
	*x = exchange{s: s, snap: snap, rid: rid, start: start}
	x.a.snap = snap
}

// route matches the request to a model; ErrNoRoute when none.
func (x *exchange) route(host, path []byte, h routing.Headers) error {
	x.mod = x.snap.table.Match(host, path, h)
	if x.mod == nil {
		return ErrNoRoute
	}
	x.a.mod = x.mod
	x.pol = x.snap.policies[x.mod.Index]
	x.deadline = x.start.Add(x.mod.Config.Timeout)
	return nil
}

// pick chooses the version: the override pins one (and it may not fail
// over), else the sticky key or the weights choose.
func (x *exchange) pick(override, sticky []byte) error {
	v, err := x.mod.Pick(override, sticky)
	if err != nil {
		return err
	}
	x.a.v, x.a.pinned = v, len(override) > 0
	return nil
}

// version is the name of the version the request is with, "" before pick.
func (x *exchange) version() string {
	if x.ep != nil {
		return x.ep.Version
	}
	if x.a.v != nil {
		return x.a.v.Name
	}
	return ""
}

// failMetrics is where a refusal of vane's own is counted: under the
// version when one was picked, the model's "no version" row before that,
// the unmatched row before a model.
func (x *exchange) failMetrics() *versionMetrics {
	switch {
	case x.vm != nil:
		return x.vm
	case x.a.v != nil:
		return x.snap.metrics[x.mod.Index][x.a.v.Index]
	case x.mod != nil:
		return x.snap.noVersion[x.mod.Index]
	default:
		return x.snap.unmatched
	}
}

// admit takes an endpoint for the next attempt: the routing choice of the
// current version first, then its other endpoints, then (unpinned
// requests) other versions by the model's on_unhealthy rule. The endpoint
// comes with its breaker permit and limiter slot, and counts as in flight.
// ok is false when no endpoint admits the attempt; err is then why, for
// the first attempt, and nil for a retry (whose answer is the last
// attempt's).
func (x *exchange) admit() (ok bool, err error) {
	if !x.budgeted {
		x.budgeted = true
		x.pol.budget.RecordExecution()
	}
	first := x.a.v.PickEndpoint(rand.Uint64())
	for {
		x.versions |= 1 << (uint(x.a.v.Index) & 63)
		ep, why := x.a.acquire(first)
		if why == nil {
			x.ep, x.vm = ep, x.snap.metrics[x.mod.Index][x.a.v.Index]
			x.tries++
			ep.Begin()
			return true, nil
		}
		nv := x.failover()
		if nv == nil {
			if x.tries > 0 {
				return false, nil
			}
			return false, why
		}
		x.a.v = nv
		first = nv.PickEndpoint(rand.Uint64())
	}
}

// failover is the version an unpinned request moves to when its version
// admits nothing; nil for pinned requests and when there is none.
func (x *exchange) failover() *routing.Version {
	if x.a.pinned {
		return nil
	}
	return x.mod.Failover(x.a.v, x.versions, rand.Float64())
}

// settle tells the breaker how the attempt went (status: the HTTP status,
// or for gRPC the one its grpc-status stands for; err: why there was no
// answer) and counts a failure. It does not give the endpoint back: the
// answer may still be streaming (release does that).
func (x *exchange) settle(status int, err error) {
	x.a.record(x.ep, status, err)
	if err != nil {
		x.vm.upstreamError(err)
	}
}

// retry decides whether the request goes again, after an attempt that
// ended with status or err before any byte of its answer reached the
// client: the policy must retry that outcome, an attempt must be left,
// the deadline not passed, and the budget must grant a permit. The caller
// has released the failed attempt's endpoint.
func (x *exchange) retry(status int, err error) bool {
	if x.tries >= x.pol.attempts || !x.retryable(status, err) || !x.s.now().Before(x.deadline) {
		return false
	}
	if !x.pol.budget.TryAcquirePermit() {
		x.vm.budgetExceeded.Inc()
		return false
	}
	x.permits++
	x.vm.retries.Inc()
	return true
}

// retryable is the retry policy's verdict on an outcome. gRPC calls are
// retried on UNAVAILABLE (settled as 503) and on transport failures, the
// way grpc-go's own transparent retry would; HTTP answers on the
// configured statuses.
func (x *exchange) retryable(status int, err error) bool {
	if x.grpc && err == nil {
		return status == http.StatusServiceUnavailable
	}
	return x.pol.retryable(status, err)
}

// release gives back the attempt's endpoint: its in-flight count and
// concurrency slot.
func (x *exchange) release() { x.snap.done(x.ep) }

// finish counts the answer the client got (code, at now) under the
// version that gave it, and gives back what the exchange held of the
// retry budget.
func (x *exchange) finish(code int, now time.Time) {
	x.failMetrics().observe(code, now.Sub(x.start))
	x.end()
}

// end gives back the retry budget's execution and permits; finish calls
// it, and so must any path that answers without finish.
func (x *exchange) end() {
	for range x.permits {
		x.pol.budget.ReleasePermit()
	}
	x.permits = 0
	if x.budgeted {
		x.budgeted = false
		x.pol.budget.ReleaseExecution()
	}
}

// detach hands what the end of a streamed answer must do over to a
// function of its own, since x goes back to its pool when the handler
// returns, before the body is sent: the function releases the endpoint,
// counts the answer (code) and gives back the retry budget.
func (x *exchange) detach() func(code int) {
	s, snap, ep, vm, start, pol, permits := x.s, x.snap, x.ep, x.vm, x.start, x.pol, x.permits
	x.permits, x.budgeted = 0, false
	return func(code int) {
		snap.done(ep)
		vm.observe(code, s.now().Sub(start))
		for range permits {
			pol.budget.ReleasePermit()
		}
		pol.budget.ReleaseExecution()
	}
}
