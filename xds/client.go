package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/vaneproxy/vane/configs"
)

// LastGoodFile is the file under state_dir that holds the last config a
// sidecar applied from xDS (a complete config file).
const LastGoodFile = "xds-last-good.yaml"

// ClientOptions configure a Client.
type ClientOptions struct {
	// Servers are the control plane addresses, in fail-over order.
	// Required.
	Servers []string
	// NodeID and Cluster identify the node; Cluster names its group.
	NodeID, Cluster string
	// Creds secure the connection; nil means plaintext.
	Creds credentials.TransportCredentials
	// Base is the serve config file the models are composed onto.
	Base []byte
	// Apply swaps a composed, validated config in (the proxy's atomic
	// reload path). Its error NACKs the update. Required.
	Apply func(cfg *configs.Config, raw []byte) error
	// StateDir, when set, keeps the last good config (LastGoodFile).
	StateDir string
	// Registerer receives the vane_xds_* metrics. Required.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now; Jitter (a number in [0,1)) to
	// math/rand/v2's Float64.
	Now    func() time.Time
	Jitter func() float64
	// Reconnect back-off: from MinBackoff (default 100ms) doubling to
	// MaxBackoff (default 2s), each wait jittered down by up to half.
	MinBackoff, MaxBackoff time.Duration
	// NACK back-off: the same rejection repeated waits from
	// MinNACKBackoff (default 500ms) doubling to MaxNACKBackoff (default
	// 30s) before it is sent again.
	MinNACKBackoff, MaxNACKBackoff time.Duration
	// OnResult, when set, is called after each ACK or NACK is sent (err
	// nil for an ACK). For tests and benchmarks.
	OnResult func(typeName, version string, err error)
}

// Client is a sidecar's ADS client: it subscribes to its group's routes,
// clusters and endpoints, translates them into a config (FromEnvoy,
// Compose: validated exactly as a file), applies it through
// ClientOptions.Apply, and ACKs, or NACKs with error_detail and keeps the
// last good.
type Client struct {
	opts     ClientOptions
	log      *slog.Logger
	metrics  *clientMetrics
	composer *composer // Base, parsed once

	// accepted is each type's last ACKed state; decoded each type's
	// last received messages by their wire bytes, so that unchanged
	// resources are not decoded again and keep their identity; models
	// the translation of each route message. All three are used only by
	// Run's goroutine.
	accepted map[string]*typeSnapshot
	decoded  map[string]map[string]proto.Message
	models   modelCache

	// mu guards status.
	mu     sync.Mutex
	status ClientStatus
}

// typeSnapshot is one type's resources as last received.
type typeSnapshot struct {
	version   string
	resources []proto.Message
}

// ClientStatus is what /status shows of the xDS source.
type ClientStatus struct {
	Source    string            `json:"source"`
	Server    string            `json:"server"`
	Connected bool              `json:"connected"`
	Cluster   string            `json:"cluster"`
	NodeID    string            `json:"node_id"`
	Versions  map[string]string `json:"versions"`
	Pending   string            `json:"pending,omitempty"`
	LastNACK  *ClientNACK       `json:"last_nack,omitempty"`
	LastApply time.Time         `json:"last_update,omitzero"`
}

// ClientNACK is the last update the client rejected.
type ClientNACK struct {
	Type    string    `json:"type"`
	Version string    `json:"version"`
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
	Count   int       `json:"count"`
}

type clientMetrics struct {
	connected  prometheus.Gauge
	updates    *prometheus.CounterVec
	lastUpdate prometheus.Gauge
}

func newClientMetrics(reg prometheus.Registerer) (*clientMetrics, error) {
	m := &clientMetrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vane_xds_connected",
			Help: "1 while the ADS stream to a control plane is open, else 0."}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vane_xds_updates_total",
			Help: "xDS responses handled, by type (rds, cds, eds) and result (ack, nack)."}, []string{"type", "result"}),
		lastUpdate: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vane_xds_last_update_timestamp_seconds",
			Help: "Unix time of the last config applied from xDS."}),
	}
	for _, c := range []prometheus.Collector{m.connected, m.updates, m.lastUpdate} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// The types a sidecar subscribes to, all wildcard: its group's routes,
// clusters and endpoints.
var clientTypes = []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.RouteType}

// NewClient checks the options and registers the metrics.
func NewClient(opts ClientOptions) (*Client, error) {
	if len(opts.Servers) == 0 || opts.Apply == nil || opts.Registerer == nil {
		return nil, errors.New("xds: ClientOptions.Servers, Apply and Registerer are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	if opts.Creds == nil {
		opts.Creds = insecure.NewCredentials()
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&opts.MinBackoff, 100*time.Millisecond)
	setDur(&opts.MaxBackoff, 2*time.Second)
	setDur(&opts.MinNACKBackoff, 500*time.Millisecond)
	setDur(&opts.MaxNACKBackoff, 30*time.Second)
	m, err := newClientMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	comp, err := newComposer(opts.Base)
	if err != nil {
		return nil, err
	}
	c := &Client{opts: opts, log: opts.Logger, metrics: m, composer: comp,
		accepted: map[string]*typeSnapshot{}, decoded: map[string]map[string]proto.Message{}}
	c.status = ClientStatus{Source: "xds", Server: opts.Servers[0], Cluster: opts.Cluster, NodeID: opts.NodeID,
		Versions: map[string]string{}}
	return c, nil
}

// Status reports the connection, the versions applied and the last NACK.
func (c *Client) Status() ClientStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.status
	st.Versions = make(map[string]string, len(c.status.Versions))
	for k, v := range c.status.Versions {
		st.Versions[k] = v
	}
	if st.LastNACK != nil {
		n := *st.LastNACK
		st.LastNACK = &n
	}
	return st
}

// Run keeps a stream open to one of the servers until ctx is done,
// reconnecting with jittered back-off and moving to the next server after
// each failed attempt.
func (c *Client) Run(ctx context.Context) error {
	backoff := c.opts.MinBackoff
	for i := 0; ; i = (i + 1) % len(c.opts.Servers) {
		server := c.opts.Servers[i]
		c.mu.Lock()
		c.status.Server = server
		c.mu.Unlock()
		got, err := c.stream(ctx, server)
		c.setConnected(false)
		if ctx.Err() != nil {
			return nil
		}
		if got {
			backoff = c.opts.MinBackoff
			i-- // a server that answered is tried again first
		}
		c.log.Warn("xds stream ended; reconnecting", "server", server, "error", err, "backoff", backoff)
		wait := time.Duration(float64(backoff) * (1 - c.opts.Jitter()/2))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(backoff*2, c.opts.MaxBackoff)
	}
}

func (c *Client) setConnected(up bool) {
	c.mu.Lock()
	c.status.Connected = up
	c.mu.Unlock()
	if up {
		c.metrics.connected.Set(1)
	} else {
		c.metrics.connected.Set(0)
	}
}

// stream runs one ADS stream; got reports whether any response came.
func (c *Client) stream(ctx context.Context, server string) (got bool, err error) {
	conn, err := grpc.NewClient(server, grpc.WithTransportCredentials(c.opts.Creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}))
	if err != nil {
		return false, err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(sctx)
	if err != nil {
		return false, err
	}
	node := &core.Node{Id: c.opts.NodeID, Cluster: c.opts.Cluster, UserAgentName: "vane"}
	for i, t := range clientTypes {
		req := &discovery.DiscoveryRequest{TypeUrl: t}
		if i == 0 {
			req.Node = node
		}
		if a := c.accepted[t]; a != nil {
			req.VersionInfo = a.version
		}
		if err := st.Send(req); err != nil {
			return false, err
		}
	}
	// The transport is up (the stream would have failed fast otherwise).
	// With the versions it sent, a control plane whose content is the
	// same answers nothing: connected, nothing to apply.
	c.setConnected(true)
	c.log.Info("xds stream open", "server", server)
	// lastErr and nackDelay track repeats of one rejection, for back-off.
	var lastErr string
	nackDelay := time.Duration(0)
	for {
		resp, err := st.Recv()
		if err != nil {
			return got, err
		}
		got = true
		req, result := c.handle(resp)
		if result != nil {
			msg := result.Error()
			if msg == lastErr {
				nackDelay = min(max(nackDelay*2, c.opts.MinNACKBackoff), c.opts.MaxNACKBackoff)
				select {
				case <-ctx.Done():
					return got, ctx.Err()
				case <-time.After(nackDelay):
				}
			} else {
				lastErr, nackDelay = msg, 0
			}
		} else {
			lastErr, nackDelay = "", 0
		}
		if err := st.Send(req); err != nil {
			return got, err
		}
		if c.opts.OnResult != nil {
			c.opts.OnResult(TypeName(resp.TypeUrl), resp.VersionInfo, result)
		}
	}
}

// handle takes one response in: it returns the ACK or NACK to send, and
// the rejection (nil for an ACK).
func (c *Client) handle(resp *discovery.DiscoveryResponse) (*discovery.DiscoveryRequest, error) {
	t := resp.TypeUrl
	err := c.take(resp)
	name := TypeName(t)
	if err == nil {
		c.metrics.updates.WithLabelValues(name, "ack").Inc()
		return &discovery.DiscoveryRequest{TypeUrl: t, VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce}, nil
	}
	c.metrics.updates.WithLabelValues(name, "nack").Inc()
	prev := ""
	if a := c.accepted[t]; a != nil {
		prev = a.version
	}
	c.mu.Lock()
	n := &ClientNACK{Type: name, Version: resp.VersionInfo, Error: err.Error(), At: c.opts.Now().UTC(), Count: 1}
	if old := c.status.LastNACK; old != nil && old.Error == n.Error && old.Version == n.Version {
		n.Count = old.Count + 1
	}
	c.status.LastNACK = n
	c.mu.Unlock()
	if n.Count == 1 {
		c.log.Error("xds update rejected; the last good config keeps serving", "type", name, "version", resp.VersionInfo, "error", err.Error())
	}
	return &discovery.DiscoveryRequest{TypeUrl: t, VersionInfo: prev, ResponseNonce: resp.Nonce,
		ErrorDetail: &statuspb.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}}, err
}

// take decodes a response and, when the resources it completes make a
// valid config, applies it. An incomplete set is accepted and waits for
// the rest.
func (c *Client) take(resp *discovery.DiscoveryResponse) error {
	snap := &typeSnapshot{version: resp.VersionInfo}
	old, seen := c.decoded[resp.TypeUrl], make(map[string]proto.Message, len(resp.Resources))
	for _, a := range resp.Resources {
		if m, ok := old[string(a.Value)]; ok {
			snap.resources = append(snap.resources, m)
			seen[string(a.Value)] = m
			continue
		}
		var m proto.Message
		switch resp.TypeUrl {
		case resourcev3.RouteType:
			m = &route.RouteConfiguration{}
		case resourcev3.ClusterType:
			m = &cluster.Cluster{}
		case resourcev3.EndpointType:
			m = &endpoint.ClusterLoadAssignment{}
		default:
			return fmt.Errorf("unexpected type %s", resp.TypeUrl)
		}
		if err := a.UnmarshalTo(m); err != nil {
			return fmt.Errorf("decoding %s: %w", TypeName(resp.TypeUrl), err)
		}
		snap.resources = append(snap.resources, m)
		seen[string(a.Value)] = m
	}
	next := map[string]*typeSnapshot{}
	for k, v := range c.accepted {
		next[k] = v
	}
	next[resp.TypeUrl] = snap
	res := &Resources{}
	for _, s := range next {
		for _, m := range s.resources {
			switch x := m.(type) {
			case *route.RouteConfiguration:
				res.Routes = append(res.Routes, x)
			case *cluster.Cluster:
				res.Clusters = append(res.Clusters, x)
			case *endpoint.ClusterLoadAssignment:
				res.Endpoints = append(res.Endpoints, x)
			}
		}
	}
	pending := ""
	models, cache, err := fromEnvoy(res, c.models)
	switch {
	case errors.Is(err, ErrIncomplete) || next[resourcev3.RouteType] == nil:
		if err != nil {
			pending = err.Error()
		} else {
			pending = "waiting for routes"
		}
	case err != nil:
		return err
	default:
		cfg, raw, err := c.composer.compose(models)
		if err != nil {
			return err
		}
		if err := c.opts.Apply(cfg, raw); err != nil {
			return err
		}
		c.persist(raw)
		c.metrics.lastUpdate.Set(float64(c.opts.Now().UnixNano()) / 1e9)
	}
	// Prepared above, committed here: a rejected update leaves the
	// decoded resources and models of the accepted ones.
	c.decoded[resp.TypeUrl] = seen
	c.models = cache
	c.accepted = next
	c.mu.Lock()
	c.status.Pending = pending
	c.status.Versions[TypeName(resp.TypeUrl)] = resp.VersionInfo
	if pending == "" {
		c.status.LastApply = c.opts.Now().UTC()
	}
	c.mu.Unlock()
	return nil
}

// persist writes the last good config under state_dir, atomically.
func (c *Client) persist(raw []byte) {
	if c.opts.StateDir == "" {
		return
	}
	path := filepath.Join(c.opts.StateDir, LastGoodFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		c.log.Warn("cannot keep the last good xds config", "error", err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		c.log.Warn("cannot keep the last good xds config", "error", err)
	}
}

// LoadLastGood reads the config a sidecar last applied from xDS and
// composes its models onto base (the current file), validated as a file.
// A missing file gives an error wrapping fs.ErrNotExist.
func LoadLastGood(stateDir string, base []byte) (*configs.Config, []byte, error) {
	old, err := os.ReadFile(filepath.Join(stateDir, LastGoodFile))
	if err != nil {
		return nil, nil, err
	}
	models, err := ModelsOf(old)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", LastGoodFile, err)
	}
	return Compose(base, models)
}
