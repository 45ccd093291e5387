package proxy

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaneproxy/vane/routing"
)

// accessEntry is what the access log (access_log in the config) says of
// one request: filled while the request runs, written when it ends. Only
// sampled requests get one; the others pay one config read.
type accessEntry struct {
	start                    time.Time
	model, version, endpoint string        // of the last upstream attempt
	upstream                 time.Duration // summed over the attempts
	attempts                 int
}

// noAccess is the deferred call of a request that is not logged.
func noAccess() {}

// newAccess starts an entry when the snapshot's access log is on and the
// request is sampled, else nil.
func (s *Server) newAccess(snap *snapshot) *accessEntry {
	al := &snap.cfg.AccessLog
	if !al.Enabled || (al.SampleRate < 1 && rand.Float64() >= al.SampleRate) {
		return nil
	}
	return &accessEntry{start: s.now()}
}

// attempted notes one upstream attempt (from attempt.observeAttempt).
func (e *accessEntry) attempted(ep *routing.Endpoint, d time.Duration) {
	if e == nil {
		return
	}
	e.model, e.version, e.endpoint = ep.Model, ep.Version, ep.URL
	e.upstream += d
	e.attempts++
}

// accessKey is the fasthttp user value that carries a request's entry.
const accessKey = "vane.access"

// access1 starts the access log entry of an HTTP/1.1 request; the caller
// defers the returned func, which writes it. A streamed answer is logged
// when its headers are sent (bytes_out -1: unknown yet).
func (s *Server) access1(ctx *fasthttp.RequestCtx) func() {
	snap := s.snap.Load()
	e := s.newAccess(snap)
	if e == nil {
		return noAccess
	}
	ctx.SetUserValue(accessKey, e)
	return func() {
		out := int64(ctx.Response.Header.ContentLength())
		if !ctx.Response.IsBodyStream() {
			out = int64(len(ctx.Response.Body()))
		}
		if e.model == "" { // refused before any attempt: which model it was for
			if m := snap.table.Match(ctx.Host(), ctx.Path(), &ctx.Request.Header); m != nil {
				e.model = m.Name
			}
		}
		if e.version == "" {
			e.version = string(ctx.Response.Header.PeekCanonical(keyVersion))
		}
		s.writeAccess(e, string(ctx.Request.Header.PeekCanonical(keyRequestID)), "HTTP/1.1",
			string(ctx.Method()), ctx.Response.StatusCode(), int64(len(ctx.Request.Body())), out)
	}
}

// accessOf1 is the entry of an HTTP/1.1 request, nil when not logged.
func (s *Server) accessOf1(ctx *fasthttp.RequestCtx, snap *snapshot) *accessEntry {
	if !snap.cfg.AccessLog.Enabled {
		return nil
	}
	e, _ := ctx.UserValue(accessKey).(*accessEntry)
	return e
}

// writeAccess writes one access log record at Info. Label-like values
// come from the config; the request id is the client's or vane's. No path,
// query or payload is logged.
func (s *Server) writeAccess(e *accessEntry, rid, proto, method string, status int, in, out int64) {
	retries := max(e.attempts-1, 0)
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "access",
		slog.String("request_id", rid),
		slog.String("proto", proto),
		slog.String("method", method),
		slog.String("model", e.model),
		slog.String("version", e.version),
		slog.String("endpoint", e.endpoint),
		slog.Int("status", status),
		slog.Float64("duration_seconds", s.now().Sub(e.start).Seconds()),
		slog.Float64("upstream_seconds", e.upstream.Seconds()),
		slog.Int("retries", retries),
		slog.Int64("bytes_in", in),
		slog.Int64("bytes_out", out),
	)
}
