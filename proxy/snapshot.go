package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/health"
	"github.com/vaneproxy/vane/monitor"
	"github.com/vaneproxy/vane/routing"
)

// snapshot is one loaded config with everything derived from it. It is
// immutable once published; the request path reads it without locks.
type snapshot struct {
	cfg      *configs.Config
	hash     string
	loadedAt time.Time
	table    *routing.Table
	// upstreams is indexed by routing.Endpoint.ID.
	upstreams []*upstream
	// metrics is indexed by model index, then version index.
	metrics [][]*versionMetrics
	// unmatched counts requests that matched no model.
	unmatched *versionMetrics
	// noVersion is indexed by model index: requests refused before a
	// version was chosen.
	noVersion []*versionMetrics
	// breakers and limiters are indexed by routing.Endpoint.ID; a nil
	// limiter means no concurrency limit.
	breakers []*health.Breaker
	limiters []limiter
	// policies is indexed by model index.
	policies []*policy
	// stickyKeys is indexed by model index: the canonical name of the
	// model's sticky header, nil for none.
	stickyKeys [][]byte
	// endpoints is indexed by routing.Endpoint.ID: per-endpoint metrics.
	endpoints []*endpointMetrics
	// byKey finds an endpoint of this snapshot by its health key.
	byKey map[string]*routing.Endpoint
	// trusted are the peers whose X-Forwarded-* are kept (trusted_proxies).
	trusted []netip.Prefix
	// byModel finds a model of this snapshot by name.
	byModel map[string]*routing.Model
}

// upstream is the transport state of one endpoint, carried across reloads
// while its key survives.
type upstream struct {
	key string
	// hc carries HTTP/1.1 to http:// endpoints; nil for h2c:// ones.
	// shared carries the streams of HTTP/2 clients there: few
	// connections carry many streams, so its connections are capped
	// (maxUpstreamConnsH2) and a stream waits for one.
	hc, shared *fasthttp.HostClient
	// h2c is true for h2c:// endpoints, which go through net/http.
	h2c bool
	// lim caps in-flight requests (limits.endpoint_concurrency = limN).
	lim  limiter
	limN int
	// maxResp caps the answers hc reads whole (limits.max_response_bytes).
	maxResp int
	// slack is how late (ns) a deadline on its connections may fire: 1/64
	// of the model's timeout (30 s: 0.47 s), never early. See
	// lazyDeadlineConn.
	slack atomic.Int64
}

func endpointKey(model, version, url string) string { return health.Key(model, version, url) }

// reloadPlan is a config prepared for serving, nothing of it visible yet:
// the new snapshot (published by commit) and what commit hands over to the
// long-lived parts of the Server.
type reloadPlan struct {
	snap *snapshot
	prev *snapshot // nil for the first config
	// monitor and health are the prepared monitor config and endpoint set.
	monitor *monitor.Plan
	health  *health.Plan
	// upstreams are the new settings of every endpoint's transport, kept
	// ones included; commit stores them.
	upstreams []upstreamSettings
	// newVersions and newEndpoints are the metrics slots of the snapshot
	// that commit fills, because resolving a series makes it appear in
	// /metrics: kept ones are filled by prepare.
	newVersions  []versionSlot
	newEndpoints []int // indexes of snap.endpoints
	// gone are the upstreams of prev that the new snapshot drops, closed
	// by commit.
	gone []*upstream
}

// upstreamSettings are what a reload may change on an endpoint's transport.
type upstreamSettings struct {
	u     *upstream
	lim   limiter
	limN  int
	slack int64
}

// versionSlot is a versionMetrics that commit resolves: model index mi,
// version index vi (-1: the model's noVersion entry).
type versionSlot struct{ mi, vi int }

// prepare builds everything cfg needs off to the side: monitor settings
// and reference files, the routing table, the endpoint set of health, the
// transports and the snapshot, reusing what prev has where keys survive.
// It can fail, and then nothing has changed: it mutates nothing that the
// Server serves (no series is created, no kept state is touched).
func (s *Server) prepare(cfg *configs.Config, raw []byte, prev *snapshot) (*reloadPlan, error) {
	mp, err := s.monitor.Prepare(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring the drift monitor: %w", err)
	}
	p := &reloadPlan{monitor: mp, prev: prev}
	var prevTable *routing.Table
	old := map[string]*upstream{}
	if prev != nil {
		prevTable = prev.table
		for _, u := range prev.upstreams {
			old[u.key] = u
		}
	}
	table, err := routing.Build(cfg, prevTable)
	if err != nil {
		return nil, fmt.Errorf("building routing table: %w", err)
	}
	snap := &snapshot{
		cfg:      cfg,
		hash:     configs.Hash(raw),
		loadedAt: s.now(),
		table:    table,
		trusted:  configs.TrustedProxies(cfg),
		byModel:  make(map[string]*routing.Model, len(table.Models())),
	}
	p.snap = snap
	for _, m := range table.Models() {
		snap.byModel[m.Name] = m
	}
	// A (model, version) keeps its metrics handles across reloads: their
	// caches, and the series to delete when it leaves the config.
	prevVM := map[[2]string]*versionMetrics{}
	if prev != nil {
		snap.unmatched = prev.unmatched
		for mi, row := range prev.metrics {
			for _, vm := range row {
				prevVM[[2]string{vm.model, vm.version}] = vm
			}
			vm := prev.noVersion[mi]
			prevVM[[2]string{vm.model, vm.version}] = vm
		}
	}
	// Endpoint metrics are kept across reloads, like versionMetrics: their
	// status-code caches then name every series forgetGone must delete.
	prevEM := map[string]*endpointMetrics{}
	if prev != nil {
		for _, em := range prev.endpoints {
			prevEM[endpointKey(em.model, em.version, em.url)] = em
		}
	}
	kept := map[string]bool{}
	snap.byKey = map[string]*routing.Endpoint{}
	var targets []health.Target
	for _, ep := range table.Endpoints() {
		key := endpointKey(ep.Model, ep.Version, ep.URL)
		mc := &cfg.Models[snap.byModel[ep.Model].Index]
		n := mc.Limits.EndpointConcurrency
		u, ok := old[key]
		if ok && u.maxResp != mc.Limits.MaxResponseBytes {
			// The cap is the HTTP/1.1 client's: a new client (and pool)
			// serves the new cap; the old one closes its idle connections.
			p.gone = append(p.gone, u)
			ok = false
		}
		set := upstreamSettings{u: u, lim: nil, limN: n, slack: int64(mc.Timeout / 64)}
		switch {
		case !ok:
			set.u = s.newUpstream(key, ep, mc.Limits.MaxResponseBytes)
			set.lim = newLimiter(n)
		case u.limN != n:
			// A new limit starts a new count; the connections stay. The
			// previous snapshot keeps the old limiter for the requests
			// it admitted.
			set.lim = newLimiter(n)
		default:
			set.lim = u.lim
		}
		p.upstreams = append(p.upstreams, set)
		kept[key] = true
		snap.upstreams = append(snap.upstreams, set.u)
		snap.limiters = append(snap.limiters, set.lim)
		snap.byKey[key] = ep
		em := prevEM[key]
		if em == nil {
			p.newEndpoints = append(p.newEndpoints, len(snap.endpoints))
		}
		snap.endpoints = append(snap.endpoints, em)
		targets = append(targets, health.Target{
			Key: key, Model: ep.Model, Version: ep.Version, URL: ep.URL,
			Scheme: ep.Scheme, Addr: ep.Addr, Protocol: mc.Protocol,
			Health: mc.Health, Breaker: mc.CircuitBreaker,
		})
	}
	// The new table starts from what health will know once the plan is
	// committed (new endpoints: not routable until their first passing
	// probe); the flags of surviving endpoints, shared with prev's table,
	// keep their values.
	p.health = s.health.Prepare(targets)
	for _, ep := range table.Endpoints() {
		snap.breakers = append(snap.breakers, p.health.Breaker(endpointKey(ep.Model, ep.Version, ep.URL)))
	}
	snap.table.SyncRoutable(func(ep *routing.Endpoint) bool {
		return p.health.Routable(endpointKey(ep.Model, ep.Version, ep.URL))
	})
	for mi, m := range table.Models() {
		row := make([]*versionMetrics, len(m.Versions))
		for i, v := range m.Versions {
			if row[i] = prevVM[[2]string{m.Name, v.Name}]; row[i] == nil {
				p.newVersions = append(p.newVersions, versionSlot{mi, i})
			}
		}
		snap.metrics = append(snap.metrics, row)
		var prevPol *policy
		var prevCfg *configs.Model
		if prev != nil {
			if pm := prev.byModel[m.Name]; pm != nil {
				prevPol, prevCfg = prev.policies[pm.Index], &prev.cfg.Models[pm.Index]
			}
		}
		snap.policies = append(snap.policies, newPolicy(&cfg.Models[m.Index], prevPol, prevCfg))
		nv := prevVM[[2]string{m.Name, ""}]
		if nv == nil {
			p.newVersions = append(p.newVersions, versionSlot{mi, -1})
		}
		snap.noVersion = append(snap.noVersion, nv)
		var sticky []byte
		if h := cfg.Models[m.Index].Routing.StickyHeader; h != "" {
			sticky = fasthttp.AppendNormalizedHeaderKey(nil, h)
		}
		snap.stickyKeys = append(snap.stickyKeys, sticky)
	}
	for key, u := range old {
		if !kept[key] {
			p.gone = append(p.gone, u)
		}
	}
	return p, nil
}

// commit makes a prepared config the one served. It cannot fail: it
// resolves the new metric series, hands the monitor and health their new
// settings, stores the transports' settings, publishes the snapshot with
// one pointer store, and then lets go of what the old one alone used.
func (s *Server) commit(p *reloadPlan) {
	snap, cfg := p.snap, p.snap.cfg
	p.monitor.Commit()
	// Health learns the new endpoint set before the snapshot is published,
	// so that a transition of a new endpoint finds it in the snapshot as
	// soon as it serves; onHealthChange on the old snapshot ignores keys
	// it does not hold, and syncRoutable below sweeps what either missed.
	p.health.Commit()
	for _, set := range p.upstreams {
		set.u.lim, set.u.limN = set.lim, set.limN
		set.u.slack.Store(set.slack) // a reloaded timeout reaches open connections
	}
	if snap.unmatched == nil {
		snap.unmatched = s.metrics.forVersion("", "")
	}
	for _, sl := range p.newVersions {
		m := snap.table.Models()[sl.mi]
		if sl.vi < 0 {
			snap.noVersion[sl.mi] = s.metrics.forVersion(m.Name, "")
			continue
		}
		vm := s.metrics.forVersion(m.Name, m.Versions[sl.vi].Name)
		vm.rec = s.compare.recorder(m.Name, vm.version) // set before the snapshot is published
		snap.metrics[sl.mi][sl.vi] = vm
	}
	for _, i := range p.newEndpoints {
		ep := snap.table.Endpoints()[i]
		snap.endpoints[i] = s.metrics.endpoints.forEndpoint(ep.Model, ep.Version, ep.URL, s.now)
	}
	for mi, m := range snap.table.Models() {
		on := cfg.Models[m.Index].Rollout.Enabled()
		for i, v := range m.Versions {
			// A kept versionMetrics is read by requests in flight: the
			// evidence pointer is swapped atomically.
			snap.metrics[mi][i].evidence.Store(s.evidence.forVersion(m.Name, v.Name, on))
		}
	}
	s.snap.Store(snap)
	s.rollouts.Configure(cfg)
	s.syncRoutable(snap)
	s.metrics.publishWeights(snap, p.prev)
	if p.prev != nil {
		s.compare.forgetGone(snap, p.prev)
	}
	s.metrics.reloaded(true, snap.loadedAt, p.prev == nil)
	// In-flight requests of removed endpoints hold their own references;
	// only idle pooled connections are closed.
	for _, u := range p.gone {
		u.close()
	}
}

// syncRoutable sets every endpoint's routable flag in snap from health.
func (s *Server) syncRoutable(snap *snapshot) {
	snap.table.SyncRoutable(func(ep *routing.Endpoint) bool {
		return s.health.Routable(endpointKey(ep.Model, ep.Version, ep.URL))
	})
}

// onHealthChange applies a health or breaker transition to the snapshot
// being served. Transitions that land on a snapshot being replaced are
// caught by the sweep after each publish.
func (s *Server) onHealthChange(key string, routable bool) {
	snap := s.snap.Load()
	if snap == nil {
		return
	}
	if ep := snap.byKey[key]; ep != nil && ep.Routable() != routable {
		snap.table.SetRoutable(ep, routable)
		s.metrics.publishModel(snap.byModel[ep.Model]) // only its model's shares moved
	}
}

// newUpstream creates the transport state of one endpoint. Its HTTP/1.1
// client has no read or write timeout of its own: every call is DoDeadline
// with the request's deadline (start + the model's timeout), which fasthttp
// sets on the connection for the write, the read of the answer and the
// reads of a streamed body, so a stalled stream cannot outlive it either.
// Its connections move those deadlines lazily (lazyDeadlineConn).
func (s *Server) newUpstream(key string, ep *routing.Endpoint, maxResp int) *upstream {
	u := &upstream{key: key, h2c: ep.Scheme == "h2c", maxResp: maxResp}
	if u.h2c {
		return u
	}
	u.hc = u.hostClient(ep)
	u.shared = u.hostClient(ep)
	u.shared.MaxConns = maxUpstreamConnsH2
	u.shared.MaxConnWaitTimeout = time.Minute // bounded by each request's deadline
	return u
}

// hostClient is a fasthttp client of ep (an http:// endpoint).
func (u *upstream) hostClient(ep *routing.Endpoint) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Dial: func(addr string) (net.Conn, error) {
			c, err := fasthttp.Dial(addr)
			if err != nil {
				return nil, err
			}
			return &lazyDeadlineConn{Conn: c, slack: &u.slack, yieldFirstRead: true, markWrites: true}, nil
		},
		// Answers read whole are capped (a declared Content-Length over
		// the cap is refused before any allocation); streamed ones are
		// read by the request path, which caps what it buffers itself.
		MaxResponseBodySize: u.maxResp,
		// fasthttp's errors would otherwise quote the upstream's bytes.
		SecureErrorLogMessage:    true,
		Addr:                     ep.Addr,
		Name:                     "vane",
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
		MaxConns:                 4096,
		MaxIdleConnDuration:      90 * time.Second,
		// A pooled keep-alive connection that the backend closed while
		// idle fails the first write or read; one more try on a fresh
		// connection is what every proxy does for that case. Other errors
		// are not retried here (the retry policy owns them).
		MaxIdemponentCallAttempts: 2,
		RetryIfErr:                retryStaleConn,
	}
}

// maxUpstreamConnsH2 caps the connections that the streams of HTTP/2
// clients open to one http:// endpoint; more streams wait for one.
const maxUpstreamConnsH2 = 256

// retryStaleConn allows a second try only when the connection broke in a
// way that a closed idle keep-alive connection produces.
func retryStaleConn(_ *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	if attempts > 1 {
		return false, false
	}
	// ECONNRESET is not among them: a reset can also cut an answer that
	// had begun, and sending the request again then is the retry policy's
	// call (counted and budgeted), not the transport's.
	return false, errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed) ||
		errors.Is(err, syscall.EPIPE)
}

func (u *upstream) close() {
	if u.hc != nil {
		u.hc.CloseIdleConnections()
		u.shared.CloseIdleConnections()
	}
}
