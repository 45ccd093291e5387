package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsHandler serves the metrics-only listener (metrics.listen):
// GET /metrics, /healthz and /readyz, nothing else. It is meant to be
// reachable by the cluster (Prometheus, kubelet probes), so it offers
// nothing that changes vane or reveals more than the metrics do, and needs
// no token.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorLog:          slogPrinter{s},
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	return mux
}

// listenMetrics starts the metrics-only listener when the config sets one.
// stop shuts it down; it is a no-op when there is none.
func (s *Server) listenMetrics(wg *sync.WaitGroup) (addr net.Addr, stop func(), err error) {
	listen := s.Config().Metrics.Listen
	if listen == "" {
		return nil, func() {}, nil
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics.listen: %w", err)
	}
	srv := &http.Server{Handler: s.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics server stopped", "error", err)
		}
	}()
	return ln.Addr(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
