package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/vaneproxy/vane/configs"
)

// RunOptions configure Run.
type RunOptions struct {
	// ConfigPath is the config file; it is watched for changes.
	ConfigPath string
	// Reload receives a value for each reload request (SIGHUP). May be nil.
	Reload <-chan struct{}
	// Logger defaults to slog.Default(); ListenAndServe logs to the
	// Server's own logger.
	Logger *slog.Logger
	// Ready, when set, is called with the bound addresses once both
	// listeners accept connections.
	Ready func(data, admin net.Addr)
	// WatchDebounce coalesces file events; default 200ms.
	WatchDebounce time.Duration
	// Version labels vane_build_info; empty means the module version.
	Version string
	// MetricsReady, when set, is called with the metrics listener's bound
	// address (metrics.listen) before Ready.
	MetricsReady func(addr net.Addr)
}

// Run loads the config, serves the data plane and the admin endpoints,
// reloads on file changes and on opts.Reload, and drains when ctx is done.
// A config that fails to load at start is returned as the error.
func Run(ctx context.Context, opts RunOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.WatchDebounce <= 0 {
		opts.WatchDebounce = 200 * time.Millisecond
	}
	cfg, raw, err := configs.Load(opts.ConfigPath)
	if err != nil {
		return err
	}
	reg := NewRegistry()
	srv, err := New(cfg, raw, Options{ConfigPath: opts.ConfigPath, Registerer: reg, Gatherer: reg, Logger: log,
		Version: opts.Version})
	if err != nil {
		return err
	}
	return srv.ListenAndServe(ctx, opts)
}

// ListenAndServe binds the configured addresses and serves until ctx is
// done; see Run.
func (s *Server) ListenAndServe(ctx context.Context, opts RunOptions) error {
	log := s.log
	cfg := s.Config()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	aln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("admin.listen: %w", err)
	}
	admin := &http.Server{Handler: s.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := admin.Serve(aln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server stopped", "error", err)
		}
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = admin.Shutdown(sctx)
	}()
	maddr, stopMetrics, err := s.listenMetrics(&wg)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer stopMetrics()
	if opts.MetricsReady != nil && maddr != nil {
		opts.MetricsReady(maddr)
	}

	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	if opts.ConfigPath != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := configs.WatchFrom(bg, opts.ConfigPath, s.snap.Load().hash, opts.WatchDebounce, func() {
				log.Info("config file changed; reloading")
				_, _ = s.Reload()
			}, func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...), "component", "watch") })
			if err != nil && bg.Err() == nil {
				log.Error("config watch stopped; reload by SIGHUP or POST /reload", "error", err)
			}
		}()
	}
	if opts.Reload != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-bg.Done():
					return
				case <-opts.Reload:
					log.Info("reload requested")
					_, _ = s.Reload()
				}
			}
		}()
	}
	log.Info("vane serving", "listen", ln.Addr().String(), "admin", aln.Addr().String())
	if opts.Ready != nil {
		opts.Ready(ln.Addr(), aln.Addr())
	}
	err = s.Serve(ctx, ln)
	stopBG()
	return err
}
