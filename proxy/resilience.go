package proxy

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/bulkhead"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/routing"
)

// ErrBreakerOpen means every endpoint the request could use refused it
// through its circuit breaker.
var ErrBreakerOpen = errors.New("circuit breaker open")

// ErrOverloaded means every endpoint the request could use is at its
// concurrency limit (limits.endpoint_concurrency).
var ErrOverloaded = errors.New("endpoint concurrency limit reached")

// retryBudget is the part of failsafe-go's budget that vane uses: the
// request path records live requests and asks for a permit per retry.
type retryBudget interface {
	RecordExecution()
	ReleaseExecution()
	TryAcquirePermit() bool
	ReleasePermit()
}

// limiter is the part of failsafe-go's bulkhead that vane uses.
type limiter interface {
	TryAcquirePermit() bool
	ReleasePermit()
}

// policy is one model's resilience settings, resolved at snapshot build.
type policy struct {
	attempts int
	budget   retryBudget
	// retryOn[code] is true for the statuses that are retried.
	retryOn [600]bool
}

func newPolicy(m *configs.Model, prev *policy, prevCfg *configs.Model) *policy {
	p := &policy{attempts: m.Retry.Attempts}
	for _, s := range m.Retry.OnStatuses {
		if s >= 0 && s < len(p.retryOn) {
			p.retryOn[s] = true
		}
	}
	// The budget counts live requests: keep it across reloads that do not
	// change it, so a reload does not forget the retries in flight.
	if prev != nil && prevCfg != nil && prevCfg.Retry.BudgetRatio == m.Retry.BudgetRatio &&
		prevCfg.Retry.MinConcurrent == m.Retry.MinConcurrent {
		p.budget = prev.budget
	} else {
		p.budget = budget.NewBuilder().
			WithMaxRate(m.Retry.BudgetRatio).
			WithMinConcurrency(uint(max(m.Retry.MinConcurrent, 0))).
			Build().(retryBudget)
	}
	return p
}

// newLimiter returns the concurrency limit of one endpoint, or nil.
func newLimiter(n int) limiter {
	if n <= 0 {
		return nil
	}
	return bulkhead.NewBuilder[any](uint(n)).Build()
}

// attempt is the resilience state of one request across its tries.
type attempt struct {
	snap   *snapshot
	mod    *routing.Model
	v      *routing.Version
	pinned bool
	tried  [8]int // endpoint IDs already tried; more tries reuse the last slot
	n      int
	// sentAt is when the current attempt left (Unix ns; 0: not yet),
	// kept small because attempt lives on the heap; prev is the endpoint
	// of the attempt before it (see metrics_endpoint.go).
	sentAt int64
	prev   *routing.Endpoint
	// log is the request's access log entry, nil when not logged.
	log *accessEntry
}

func (a *attempt) triedEndpoint(id int) bool {
	for i := range min(a.n, len(a.tried)) {
		if a.tried[i] == id {
			return true
		}
	}
	return false
}

func (a *attempt) markTried(id int) {
	a.tried[min(a.n, len(a.tried)-1)] = id
	a.n++
}

// acquire picks an endpoint of a.v that its breaker and limiter admit,
// trying the routing choice first and then every other untried routable
// endpoint of the version. It returns the endpoint with its breaker permit
// and limiter slot taken, or the error that explains why none could be.
func (a *attempt) acquire(first *routing.Endpoint) (*routing.Endpoint, error) {
	var why error = ErrNoEndpoint
	try := func(ep *routing.Endpoint) bool {
		if ep == nil || a.triedEndpoint(ep.ID) || !ep.Routable() {
			return false
		}
		if l := a.snap.limiters[ep.ID]; l != nil && !l.TryAcquirePermit() {
			why = ErrOverloaded
			return false
		}
		if !a.snap.breakers[ep.ID].Allow() {
			if l := a.snap.limiters[ep.ID]; l != nil {
				l.ReleasePermit()
			}
			why = ErrBreakerOpen
			a.markTried(ep.ID)
			return false
		}
		a.sent(ep)
		return true
	}
	if try(first) {
		return first, nil
	}
	for _, ep := range a.v.Endpoints {
		if ep != first && try(ep) {
			return ep, nil
		}
	}
	return nil, why
}

// record gives the breaker the outcome of an attempt on ep, as soon as it
// is known (the answer's status, or the error).
func (a *attempt) record(ep *routing.Endpoint, status int, err error) {
	if clientFault(err) {
		// Neutral: the breaker's permit is released without blame.
		err = context.Canceled
	}
	a.snap.breakers[ep.ID].Record(status, err)
	a.observeAttempt(ep, status, err)
	a.markTried(ep.ID)
}

// done ends an exchange with ep that acquire admitted: ep's in-flight count
// and its concurrency slot are given back together, when the answer has
// been sent whole (a stream's last byte), so endpoint_concurrency counts
// open streams too.
func (snap *snapshot) done(ep *routing.Endpoint) {
	ep.End()
	snap.freeSlot(ep)
}

// freeSlot gives back the concurrency slot acquire took for ep.
func (snap *snapshot) freeSlot(ep *routing.Endpoint) {
	if l := snap.limiters[ep.ID]; l != nil {
		l.ReleasePermit()
	}
}

// retryable reports whether an attempt's outcome may be retried: any
// transport error but a timeout (connect refused, a reset, a malformed
// answer), and the configured statuses. An attempt is only ever retried
// before any byte of its answer reached the client. Timeouts are not
// retried: the model's timeout covers the whole exchange.
func (p *policy) retryable(status int, err error) bool {
	if err != nil {
		return !isTimeout(err) && !clientFault(err)
	}
	return status >= 0 && status < len(p.retryOn) && p.retryOn[status]
}

// serveBreakerReset closes breakers by hand: POST /breakers/reset with
// optional model, version and endpoint query parameters ("" matches any).
func (s *Server) serveBreakerReset(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n := s.health.Reset(q.Get("model"), q.Get("version"), strings.TrimSpace(q.Get("endpoint")))
	if n == 0 {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no endpoint matches", Model: q.Get("model"), Version: q.Get("version")})
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"reset": n})
}
