package proxy

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"github.com/vaneproxy/vane/proxy/h2relay"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/health"
	"github.com/vaneproxy/vane/monitor"
	"github.com/vaneproxy/vane/rollout"
)

// Options are the dependencies of a Server. Zero values are usable except
// where noted.
type Options struct {
	// ConfigPath is the file that Reload reads. Empty means Reload can only
	// be given bytes (ReloadBytes).
	ConfigPath string
	// Registerer receives the metrics. Required.
	Registerer prometheus.Registerer
	// Gatherer serves /metrics. Required for the admin handler.
	Gatherer prometheus.Gatherer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// ControlPlane, when set, names where the models come from instead of
	// a file (an xDS control plane): the weights endpoints then answer
	// 409 naming it, and rollouts cannot write.
	ControlPlane string
	// RolloutTick is how often rollouts are evaluated; default 1s;
	// negative means Serve does not run them (tests call Evaluate).
	RolloutTick time.Duration
	// Version labels vane_build_info; empty means the module version.
	Version string
}

// Server is the data plane and its admin endpoints.
type Server struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	metrics *Metrics
	ids     *requestIDs
	health  *health.Checker
	monitor *monitor.Monitor
	// evidence, rollouts and notifier run models[].rollout.
	evidence *evidence
	rollouts *rollout.Controller
	notifier *rolloutNotifier
	compare  *comparison  // shadow comparisons, ground truth, /compare
	shadowQ  *shadowQueue // copies to shadow versions

	snap atomic.Pointer[snapshot]
	// reloadMu serializes config loads so two reloads never build from the
	// same previous snapshot.
	reloadMu sync.Mutex

	h1 *fasthttp.Server
	// relay serves the h2c connections, its pool the h2c:// endpoints;
	// transports carries HTTP/1.1 requests to h2c:// endpoints.
	relay      *h2relay.Server
	relayPool  *h2relay.Pool
	transports *transports
	draining   atomic.Bool
	// sampleSeed keys the sampling hash of request ids (see sampled).
	sampleSeed maphash.Seed
	source     atomic.Pointer[func() any] // what /status shows as source; see SetSource
}

// New builds a Server serving cfg (whose raw bytes give the config hash).
func New(cfg *configs.Config, raw []byte, opts Options) (*Server, error) {
	if opts.Registerer == nil {
		return nil, errors.New("proxy: Options.Registerer is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m, err := NewMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	s := &Server{opts: opts, log: opts.Logger, now: opts.Now, metrics: m, ids: newRequestIDs(),
		sampleSeed: maphash.MakeSeed()}
	if err := registerAll(opts.Registerer, newBuildInfo(opts.Version), newInFlightCollector(s)); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	s.health, err = health.NewChecker(health.Options{Registerer: opts.Registerer, Logger: opts.Logger,
		Now: opts.Now, OnChange: s.onHealthChange})
	if err != nil {
		return nil, fmt.Errorf("starting health checks: %w", err)
	}
	if s.compare, err = newComparison(cfg, opts.Registerer, opts.Now); err != nil {
		return nil, fmt.Errorf("registering comparison metrics: %w", err)
	}
	s.shadowQ = newShadowQueue(cfg.Shadowing)
	s.monitor, err = monitor.New(monitor.Options{Registerer: opts.Registerer, Logger: opts.Logger, Now: opts.Now,
		OnPrediction: s.compare.onPrediction})
	if err != nil {
		return nil, fmt.Errorf("starting the drift monitor: %w", err)
	}
	if err := s.newRollouts(); err != nil {
		return nil, err
	}
	plan, err := s.prepare(cfg, raw, nil)
	if err != nil {
		return nil, err
	}
	s.commit(plan)

	s.h1 = &fasthttp.Server{
		Handler:               s.serveHTTP1,
		Name:                  "vane",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		NoDefaultDate:         false,
		// Field names are case-insensitive: fasthttp canonicalises them
		// as it parses (x-user-id → X-User-Id) and Peek/Del canonicalise
		// their argument, so the contract's headers, the sticky header and
		// the hop-by-hop fields are found in whatever case a client sent.
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		// A client must send its whole request within a minute (slowloris
		// protection); idle keep-alive connections close after a minute
		// too. Equal, the two deadlines fasthttp sets per request (idle
		// after an answer, read at the next request's first byte) differ
		// only by the idle gap, so the connection's lazy deadlines (see
		// serverSlack) skip nearly all of them.
		ReadTimeout:        clientTimeout,
		IdleTimeout:        clientTimeout,
		MaxRequestBodySize: 64 << 20,
		ReadBufferSize:     16 << 10,
		ErrorHandler:       s.serveHTTP1Error,
		Logger:             fasthttpLogger{s.log},
	}
	s.relayPool = h2relay.NewPool(h2relay.PoolOptions{})
	s.relay = &h2relay.Server{Handler: relayHandler{s}, MaxConcurrentStreams: h2MaxStreams, MaxResets: h2ResetMin}
	s.transports = newTransports()
	return s, nil
}

// Config returns the config being served.
func (s *Server) Config() *configs.Config { return s.snap.Load().cfg }

// ReloadBytes validates raw and, when valid, swaps it in. A config that
// fails validation changes nothing and returns configs.Errors.
func (s *Server) ReloadBytes(raw []byte) (string, error) {
	cfg, err := configs.Parse(raw)
	if err != nil {
		s.rejected(err)
		return "", err
	}
	return s.apply(cfg, raw)
}

// Reload re-reads Options.ConfigPath; see ReloadBytes.
func (s *Server) Reload() (string, error) {
	if s.opts.ConfigPath == "" {
		return "", errors.New("no config file to reload")
	}
	cfg, raw, err := configs.Load(s.opts.ConfigPath)
	if err != nil {
		s.rejected(err)
		return "", err
	}
	return s.apply(cfg, raw)
}

func (s *Server) rejected(err error) {
	s.metrics.reloaded(false, s.now(), false)
	s.log.Error("config rejected; previous config keeps serving", "error", err.Error())
}

func (s *Server) apply(cfg *configs.Config, raw []byte) (string, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	prev := s.snap.Load()
	if h := configs.Hash(raw); h == prev.hash {
		// Nothing changed (a file event and a SIGHUP for the same edit, or
		// a reload of an untouched file): not a new load.
		s.metrics.reloadOK.Set(1)
		s.metrics.reloads.WithLabelValues("unchanged").Inc()
		s.log.Info("config unchanged; nothing to reload", "hash", h)
		return h, nil
	}
	// Prepare, then commit: every step that can fail (a reference file
	// the monitor cannot read, an endpoint the routing table refuses) runs
	// in prepare, which changes nothing, so a rejected config leaves the
	// old one serving exactly as it was.
	plan, err := s.prepare(cfg, raw, prev)
	if err != nil {
		s.rejected(err)
		return "", err
	}
	if cfg.Listen != prev.cfg.Listen || cfg.Admin.Listen != prev.cfg.Admin.Listen {
		s.log.Warn("listen addresses change only on restart",
			"listen", prev.cfg.Listen, "admin_listen", prev.cfg.Admin.Listen)
	}
	s.warnFixedAtStart(prev.cfg, cfg)
	s.commit(plan)
	s.log.Info("config loaded", "hash", plan.snap.hash, "models", len(cfg.Models))
	return plan.snap.hash, nil
}

// Serve runs the data plane on ln until ctx is done, then stops accepting
// and lets in-flight requests finish for up to the config's drain timeout.
// It returns nil after a complete drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hctx, stopHealth := context.WithCancel(context.Background())
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		s.health.Run(hctx)
	}()
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		s.monitor.Run(hctx)
	}()
	rolloutsDone := s.runRollouts(hctx)
	shadowsDone := make(chan struct{})
	go func() {
		defer close(shadowsDone)
		s.runShadows(hctx)
	}()
	defer func() {
		stopHealth()
		<-healthDone
		<-monitorDone
		<-rolloutsDone
		<-shadowsDone
	}()
	h1ln := newChanListener(ln.Addr())
	errc := make(chan error, 2)
	go func() { errc <- s.h1.Serve(h1ln) }()
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		s.accept(ln, h1ln)
	}()

	select {
	case <-ctx.Done():
	case err := <-errc:
		_ = ln.Close()
		return fmt.Errorf("serving http/1.1: %w", err)
	}
	s.draining.Store(true)
	drain := s.snap.Load().cfg.Shutdown.DrainTimeout
	s.log.Info("draining", "timeout", drain.String())
	_ = ln.Close()
	<-acceptDone
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()

	var wg sync.WaitGroup
	var h1err error
	wg.Add(2)
	go func() {
		defer wg.Done()
		h1err = s.h1.ShutdownWithContext(dctx)
	}()
	go func() {
		defer wg.Done()
		_ = s.relay.Shutdown(dctx) // tells every h2 conn to GOAWAY, waits for their streams
		s.relayPool.Close()
	}()
	wg.Wait()
	if h1err != nil || dctx.Err() != nil {
		return fmt.Errorf("drain incomplete after %s", drain)
	}
	return nil
}

// accept hands each new connection to the demultiplexer until ln closes.
func (s *Server) accept(ln net.Listener, h1 *chanListener) {
	var tempDelay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				time.Sleep(tempDelay)
				continue
			}
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("accept failed", "error", err)
			}
			_ = h1.Close()
			return
		}
		tempDelay = 0
		go s.demux(c, h1)
	}
}

// clientTimeout bounds how long an HTTP/1.1 client may take to send a
// request, and how long its keep-alive connection may stay idle.
const clientTimeout = 60 * time.Second

// serverSlack is how late (ns) a deadline on a client connection may fire:
// 1 s of clientTimeout's 60 (see lazyDeadlineConn).
var serverSlack = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(int64(clientTimeout / 60))
	return &n
}()

// demux reads just enough of a new connection to tell HTTP/2 (whose client
// preface is fixed) from HTTP/1.x, then hands it on with the bytes read.
func (s *Server) demux(c net.Conn, h1 *chanListener) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic serving connection", "panic", r)
			_ = c.Close()
		}
	}()
	_ = c.SetReadDeadline(s.now().Add(10 * time.Second))
	pc, isH2, err := sniff(c)
	if err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if !isH2 {
		if !h1.deliver(&lazyDeadlineConn{Conn: pc, slack: serverSlack, perRequestWrites: true}) {
			_ = c.Close()
		}
		return
	}
	if s.draining.Load() {
		_ = c.Close()
		return
	}
	s.relay.ServeConn(pc)
}

// fasthttpLogger adapts slog to fasthttp's logger.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	// fasthttp's parse errors quote up to 400 bytes of the raw request
	// (headers, tokens, payload) after "buffer size="; vane never logs
	// request contents.
	if i := strings.Index(msg, "buffer size="); i >= 0 {
		msg = msg[:i] + "[request contents omitted]"
	}
	f.l.Debug(msg, "component", "http1")
}
