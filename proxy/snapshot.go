package proxy

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaneproxy/vane/configs"
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
}

// upstream is the transport state of one endpoint, carried across reloads
// while its key survives.
type upstream struct {
	key string
	// hc carries HTTP/1.1 to http:// endpoints; nil for h2c:// ones.
	hc *fasthttp.HostClient
	// h2c is true for h2c:// endpoints, which go through net/http.
	h2c bool
}

func endpointKey(model, version, url string) string {
	return model + "\x00" + version + "\x00" + url
}

// buildSnapshot derives a snapshot from a validated config, reusing the
// routing state and upstream pools of prev where keys survive. It returns
// the upstreams of prev that are gone, for the caller to close.
func (s *Server) buildSnapshot(cfg *configs.Config, raw []byte, prev *snapshot) (*snapshot, []*upstream, error) {
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
		return nil, nil, fmt.Errorf("building routing table: %w", err)
	}
	snap := &snapshot{
		cfg:       cfg,
		hash:      configs.Hash(raw),
		loadedAt:  s.now(),
		table:     table,
		unmatched: s.metrics.forVersion("", ""),
	}
	kept := map[string]bool{}
	for _, ep := range table.Endpoints() {
		key := endpointKey(ep.Model, ep.Version, ep.URL)
		u, ok := old[key]
		if !ok {
			u = s.newUpstream(key, ep, cfg)
		}
		kept[key] = true
		snap.upstreams = append(snap.upstreams, u)
	}
	for _, m := range table.Models() {
		row := make([]*versionMetrics, len(m.Versions))
		for i, v := range m.Versions {
			row[i] = s.metrics.forVersion(m.Name, v.Name)
		}
		snap.metrics = append(snap.metrics, row)
		snap.noVersion = append(snap.noVersion, s.metrics.forVersion(m.Name, ""))
	}
	var gone []*upstream
	for key, u := range old {
		if !kept[key] {
			gone = append(gone, u)
		}
	}
	return snap, gone, nil
}

// newUpstream creates the transport state of one endpoint. The read and
// write timeouts bound each I/O on the upstream connection by the model's
// timeout, so a stalled stream cannot outlive it by more than that.
func (s *Server) newUpstream(key string, ep *routing.Endpoint, cfg *configs.Config) *upstream {
	u := &upstream{key: key, h2c: ep.Scheme == "h2c"}
	if u.h2c {
		return u
	}
	timeout := 30 * time.Second
	for i := range cfg.Models {
		if cfg.Models[i].Name == ep.Model {
			timeout = cfg.Models[i].Timeout
		}
	}
	u.hc = &fasthttp.HostClient{
		Addr:                          ep.Addr,
		Name:                          "vane",
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		MaxConns:                      4096,
		MaxIdleConnDuration:           90 * time.Second,
		ReadTimeout:                   timeout,
		WriteTimeout:                  timeout,
		// A pooled keep-alive connection that the backend closed while
		// idle fails the first write or read; one more try on a fresh
		// connection is what every proxy does for that case. Other errors
		// are not retried here (the retry policy owns them).
		MaxIdemponentCallAttempts: 2,
		RetryIfErr:                retryStaleConn,
	}
	return u
}

// retryStaleConn allows a second try only when the connection broke in a
// way that a closed idle keep-alive connection produces.
func retryStaleConn(_ *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	if attempts > 1 {
		return false, false
	}
	return false, errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (u *upstream) close() {
	if u.hc != nil {
		u.hc.CloseIdleConnections()
	}
}
