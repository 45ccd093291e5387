package xds

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/vaneproxy/vane/configs"
)

// ControlPlaneOptions configure a ControlPlane.
type ControlPlaneOptions struct {
	// ConfigPath is the control plane file; it is watched for changes.
	ConfigPath string
	// Reload receives a value for each reload request (SIGHUP). May be nil.
	Reload <-chan struct{}
	// Registerer and Gatherer carry the metrics. Required.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// Ready, when set, is called with the bound addresses once both
	// listeners accept connections.
	Ready func(grpcAddr, admin net.Addr)
	// WatchDebounce coalesces file events; default 25ms (a fleet waits
	// on it).
	WatchDebounce time.Duration
}

// ControlPlane serves the groups of a control plane file over ADS (state
// of the world) and reloads the file when it changes. An invalid file is
// rejected whole, naming the field, and the last good one stays served:
// nothing reaches the cache that a sidecar's validator would refuse.
type ControlPlane struct {
	opts    ControlPlaneOptions
	log     *slog.Logger
	cache   *Cache
	metrics *cpMetrics

	// reloadMu serializes loads.
	reloadMu sync.Mutex
	// mu guards cfg, hash, loadedAt, nodes and lastNACK.
	mu       sync.Mutex
	cfg      *configs.ControlPlane
	hash     string
	loadedAt time.Time
	nodes    map[int64]*core.Node // by stream id
	lastNACK *NACKStatus
}

// NACKStatus is the last rejection a client sent.
type NACKStatus struct {
	Group string    `json:"group"`
	Type  string    `json:"type"`
	Error string    `json:"error"`
	At    time.Time `json:"at"`
}

type cpMetrics struct {
	reloadOK  prometheus.Gauge
	reloads   *prometheus.CounterVec
	streams   prometheus.Gauge
	nacks     *prometheus.CounterVec
	responses *prometheus.CounterVec
}

func newCPMetrics(reg prometheus.Registerer) (*cpMetrics, error) {
	m := &cpMetrics{
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vane_config_last_reload_successful",
			Help: "1 when the last load of the control plane file succeeded, else 0."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vane_config_reloads_total",
			Help: "Loads of the control plane file, by result (success, failure)."}, []string{"result"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vane_controlplane_streams",
			Help: "Open ADS streams."}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vane_controlplane_nacks_total",
			Help: "NACKs received, by xDS type (lds, rds, cds, eds)."}, []string{"type"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vane_controlplane_responses_total",
			Help: "Discovery responses sent, by xDS type (lds, rds, cds, eds)."}, []string{"type"}),
	}
	for _, c := range []prometheus.Collector{m.reloadOK, m.reloads, m.streams, m.nacks, m.responses} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// NewControlPlane loads the file and builds every group's resources; a
// file that does not load is the error.
func NewControlPlane(opts ControlPlaneOptions) (*ControlPlane, error) {
	if opts.Registerer == nil || opts.Gatherer == nil {
		return nil, errors.New("xds: ControlPlaneOptions.Registerer and Gatherer are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WatchDebounce <= 0 {
		opts.WatchDebounce = 25 * time.Millisecond
	}
	m, err := newCPMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	cp := &ControlPlane{opts: opts, log: opts.Logger, metrics: m, nodes: map[int64]*core.Node{}}
	cp.cache = NewCache(cp.onNACK)
	if _, err := cp.Reload(); err != nil {
		return nil, err
	}
	return cp, nil
}

// Cache is the cache the control plane publishes to.
func (cp *ControlPlane) Cache() *Cache { return cp.cache }

// Config returns the file being served.
func (cp *ControlPlane) Config() *configs.ControlPlane {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.cfg
}

// Reload re-reads the file; see ReloadBytes.
func (cp *ControlPlane) Reload() (string, error) {
	raw, err := os.ReadFile(cp.opts.ConfigPath)
	if err != nil {
		err = fmt.Errorf("reading control plane config: %w", err)
		cp.rejected(err)
		return "", err
	}
	return cp.ReloadBytes(raw)
}

// ReloadBytes parses a control plane file and, when it is valid, builds
// and publishes every group. Before anything is published each group
// goes through what a sidecar does with it (Envoy resources back to a
// config file, parsed and validated), so a sidecar never gets something
// it must NACK from a valid file. The error is configs.Errors for file
// problems.
func (cp *ControlPlane) ReloadBytes(raw []byte) (string, error) {
	cp.reloadMu.Lock()
	defer cp.reloadMu.Unlock()
	hash := configs.Hash(raw)
	cp.mu.Lock()
	same := cp.cfg != nil && cp.hash == hash
	cp.mu.Unlock()
	if same {
		cp.metrics.reloadOK.Set(1)
		return hash, nil
	}
	cfg, err := configs.ParseControlPlane(raw)
	if err != nil {
		cp.rejected(err)
		return "", err
	}
	groups, err := buildGroups(cfg)
	if err != nil {
		cp.rejected(err)
		return "", err
	}
	cp.cache.Set(groups)
	cp.mu.Lock()
	cp.cfg, cp.hash, cp.loadedAt = cfg, hash, cp.opts.Now()
	cp.mu.Unlock()
	cp.metrics.reloadOK.Set(1)
	cp.metrics.reloads.WithLabelValues("success").Inc()
	cp.log.Info("control plane config loaded", "hash", hash, "groups", len(cfg.Groups))
	return hash, nil
}

// buildGroups translates and checks every group.
func buildGroups(cfg *configs.ControlPlane) (map[string]*groupState, error) {
	groups := map[string]*groupState{}
	for i := range cfg.Groups {
		g := &cfg.Groups[i]
		res, err := ToEnvoy(g.Models)
		if err != nil {
			return nil, fmt.Errorf("groups[%d] (%s): %w", i, g.Name, err)
		}
		models, err := FromEnvoy(res)
		if err != nil {
			return nil, fmt.Errorf("groups[%d] (%s): %w", i, g.Name, err)
		}
		if _, _, err := Compose([]byte("admin: {listen: 127.0.0.1:0}\n"), models); err != nil {
			return nil, fmt.Errorf("groups[%d] (%s) as a sidecar reads it: %w", i, g.Name, err)
		}
		gs, err := build(res)
		if err != nil {
			return nil, fmt.Errorf("groups[%d] (%s): %w", i, g.Name, err)
		}
		groups[g.Name] = gs
	}
	return groups, nil
}

func (cp *ControlPlane) rejected(err error) {
	cp.metrics.reloadOK.Set(0)
	cp.metrics.reloads.WithLabelValues("failure").Inc()
	cp.log.Error("control plane config rejected; the last good one keeps serving", "error", err.Error())
}

func (cp *ControlPlane) onNACK(group, typeURL, detail string) {
	cp.metrics.nacks.WithLabelValues(TypeName(typeURL)).Inc()
	cp.mu.Lock()
	cp.lastNACK = &NACKStatus{Group: group, Type: TypeName(typeURL), Error: detail, At: cp.opts.Now().UTC()}
	cp.mu.Unlock()
	cp.log.Warn("a client rejected an update", "group", group, "type", TypeName(typeURL), "error", detail)
}

// callbacks track the streams and count responses.
func (cp *ControlPlane) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamOpenFunc: func(context.Context, int64, string) error {
			cp.metrics.streams.Inc()
			return nil
		},
		StreamClosedFunc: func(id int64, _ *core.Node) {
			cp.metrics.streams.Dec()
			cp.mu.Lock()
			delete(cp.nodes, id)
			cp.mu.Unlock()
		},
		StreamRequestFunc: func(id int64, req *discovery.DiscoveryRequest) error {
			if n := req.GetNode(); n != nil {
				cp.mu.Lock()
				cp.nodes[id] = n
				cp.mu.Unlock()
			}
			return nil
		},
		StreamResponseFunc: func(_ context.Context, _ int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
			cp.metrics.responses.WithLabelValues(TypeName(resp.GetTypeUrl())).Inc()
		},
	}
}

// GRPCServer returns a gRPC server with the ADS service registered, with
// mutual TLS when the file sets tls.
func (cp *ControlPlane) GRPCServer(ctx context.Context) (*grpc.Server, error) {
	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.MaxConcurrentStreams(1 << 20),
		// Thousands of mostly idle streams: small read buffers, and write
		// buffers released after each flush (32 KiB each per connection
		// by default).
		grpc.ReadBufferSize(4 << 10),
		grpc.WriteBufferSize(4 << 10),
		grpc.SharedWriteBuffer(true),
	}
	if t := cp.Config().TLS; t.Enabled() {
		creds, err := ServerCredentials(t)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(creds))
	}
	gs := grpc.NewServer(opts...)
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, serverv3.NewServer(ctx, cp.cache, cp.callbacks()))
	return gs, nil
}

// ServerCredentials are the control plane's mutual TLS: its certificate,
// and client certificates required and verified against ca_file.
func ServerCredentials(t configs.TLS) (credentials.TransportCredentials, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	pool, err := loadPool(t.CAFile)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}), nil
}

// ClientCredentials are a sidecar's mutual TLS with the control plane.
func ClientCredentials(t configs.TLS) (credentials.TransportCredentials, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("xds.tls: %w", err)
	}
	pool, err := loadPool(t.CAFile)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool,
		MinVersion: tls.VersionTLS12}), nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls ca_file %s: no PEM certificate found", file)
	}
	return pool, nil
}

// Run serves ADS on the file's listen address and the admin endpoints
// on admin.listen, reloads on file changes and on opts.Reload, and stops
// when ctx is done.
func (cp *ControlPlane) Run(ctx context.Context) error {
	cfg := cp.Config()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	aln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("admin.listen: %w", err)
	}
	return cp.Serve(ctx, ln, aln)
}

// Serve is Run on listeners the caller bound.
func (cp *ControlPlane) Serve(ctx context.Context, ln, aln net.Listener) error {
	gs, err := cp.GRPCServer(ctx)
	if err != nil {
		_ = ln.Close()
		_ = aln.Close()
		return err
	}
	admin := &http.Server{Handler: cp.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := admin.Serve(aln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cp.log.Error("admin server stopped", "error", err)
		}
	}()
	errc := make(chan error, 1)
	go func() {
		defer wg.Done()
		errc <- gs.Serve(ln)
	}()
	bg, stop := context.WithCancel(ctx)
	defer stop()
	if cp.opts.ConfigPath != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp.mu.Lock()
			since := cp.hash
			cp.mu.Unlock()
			err := configs.WatchFrom(bg, cp.opts.ConfigPath, since, cp.opts.WatchDebounce, func() {
				cp.log.Info("control plane file changed; reloading")
				_, _ = cp.Reload()
			}, func(format string, args ...any) { cp.log.Warn(fmt.Sprintf(format, args...), "component", "watch") })
			if err != nil && bg.Err() == nil {
				cp.log.Error("config watch stopped; reload by SIGHUP or POST /reload", "error", err)
			}
		}()
	}
	if cp.opts.Reload != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-bg.Done():
					return
				case <-cp.opts.Reload:
					cp.log.Info("reload requested")
					_, _ = cp.Reload()
				}
			}
		}()
	}
	cp.log.Info("vane control plane serving", "listen", ln.Addr().String(), "admin", aln.Addr().String())
	if cp.opts.Ready != nil {
		cp.opts.Ready(ln.Addr(), aln.Addr())
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stop()
	gs.Stop()
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = admin.Shutdown(sctx)
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serving xds: %w", err)
	}
	return nil
}

// ControlPlaneStatus is the body of the control plane's GET /status.
type ControlPlaneStatus struct {
	ConfigHash string        `json:"config_hash"`
	LoadedAt   time.Time     `json:"loaded_at"`
	Groups     []GroupStatus `json:"groups"`
	Streams    int           `json:"streams"`
	LastNACK   *NACKStatus   `json:"last_nack,omitempty"`
}

// GroupStatus is one group in ControlPlaneStatus: its models, each type's
// version, and the nodes connected to it.
type GroupStatus struct {
	Name     string            `json:"name"`
	Models   []string          `json:"models"`
	Versions map[string]string `json:"versions"`
	Nodes    []string          `json:"nodes"`
}

// Status reports what is served and to whom.
func (cp *ControlPlane) Status() ControlPlaneStatus {
	cp.mu.Lock()
	st := ControlPlaneStatus{ConfigHash: cp.hash, LoadedAt: cp.loadedAt.UTC(), Streams: len(cp.nodes), LastNACK: cp.lastNACK}
	byGroup := map[string][]string{}
	for _, n := range cp.nodes {
		byGroup[n.GetCluster()] = append(byGroup[n.GetCluster()], n.GetId())
	}
	cfg := cp.cfg
	cp.mu.Unlock()
	for _, g := range cfg.Groups {
		gs := GroupStatus{Name: g.Name, Versions: cp.cache.Versions(g.Name), Nodes: byGroup[g.Name], Models: []string{}}
		for _, m := range g.Models {
			gs.Models = append(gs.Models, m.Name)
		}
		sort.Strings(gs.Nodes)
		if gs.Nodes == nil {
			gs.Nodes = []string{}
		}
		st.Groups = append(st.Groups, gs)
	}
	return st
}

// AdminHandler serves /metrics, /healthz, /readyz, /status and POST
// /reload, guarded by admin.token_file as serve's are.
func (cp *ControlPlane) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(cp.opts.Gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true})
	mux.Handle("GET /metrics", cp.guard(metrics.ServeHTTP, true))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		// A control plane only runs with a loaded file.
		writeJSON(w, http.StatusOK, map[string]any{"ready": true})
	})
	mux.HandleFunc("GET /status", cp.guard(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, cp.Status())
	}, true))
	mux.HandleFunc("POST /reload", cp.guard(func(w http.ResponseWriter, _ *http.Request) {
		hash, err := cp.Reload()
		if err != nil {
			body := map[string]any{"error": "config rejected; the last good one keeps serving"}
			var probs configs.Errors
			if errors.As(err, &probs) {
				lines := make([]string, len(probs))
				for i, p := range probs {
					lines[i] = p.String()
				}
				body["problems"] = lines
			} else {
				body["problems"] = []string{err.Error()}
			}
			writeJSON(w, http.StatusBadRequest, body)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"config_hash": hash})
	}, false))
	return mux
}

// guard requires the admin bearer token on mutating endpoints (and on
// reading ones when guard_reads is set), read from token_file per call.
func (cp *ControlPlane) guard(h http.HandlerFunc, read bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := cp.Config().Admin
		if a.TokenFile == "" || (read && !a.GuardReads) {
			h(w, r)
			return
		}
		tok, err := os.ReadFile(a.TokenFile)
		want := strings.TrimSpace(string(tok))
		if err != nil || want == "" {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "admin token unavailable"})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
