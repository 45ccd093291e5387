package xds

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vaneproxy/vane/configs"
)

// Against go-control-plane's stock snapshot cache, which re-sends a
// rejected snapshot at once, a sidecar sends one NACK per back-off step,
// not a storm.
func TestRepeatedNACKsBackOffAgainstAStockServer(t *testing.T) {
	cfg, err := configs.Parse([]byte(roundTripFile))
	require.NoError(t, err)
	res, err := ToEnvoy(cfg.Models)
	require.NoError(t, err)
	snapshot := map[string][]types.Resource{}
	for _, x := range res.Routes {
		snapshot[resourcev3.RouteType] = append(snapshot[resourcev3.RouteType], x)
	}
	for _, x := range res.Clusters {
		snapshot[resourcev3.ClusterType] = append(snapshot[resourcev3.ClusterType], x)
	}
	for _, x := range res.Endpoints {
		snapshot[resourcev3.EndpointType] = append(snapshot[resourcev3.EndpointType], x)
	}
	snap, err := cachev3.NewSnapshot("1", snapshot)
	require.NoError(t, err)
	stock := cachev3.NewSnapshotCache(false, cachev3.IDHash{}, nil)
	require.NoError(t, stock.SetSnapshot(context.Background(), "stubborn", snap))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, serverv3.NewServer(context.Background(), stock, nil))
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)

	s := startSidecar(t, []string{ln.Addr().String()}, func(o *ClientOptions) {
		o.NodeID = "stubborn"
		o.MinNACKBackoff, o.MaxNACKBackoff = 100*time.Millisecond, time.Second
	})
	s.mu.Lock()
	s.reject = func(*configs.Config) error { return errors.New("this sidecar refuses everything") }
	s.mu.Unlock()
	// 100 + 200 + 400 + 800 ms of back-off fit in 1.5 s: a handful of
	// NACKs, where the stock server alone would draw well over a thousand.
	time.Sleep(1500 * time.Millisecond)
	nacks := 0
	for _, r := range s.resultsSince(0) {
		if r == "eds nack" || r == "rds nack" || r == "cds nack" {
			nacks++
		}
	}
	assert.GreaterOrEqual(t, nacks, 2, "the rejection is sent, and repeated")
	assert.LessOrEqual(t, nacks, 8, "one NACK per back-off step")
	assert.Equal(t, "this sidecar refuses everything", s.c.Status().LastNACK.Error)
	assert.Nil(t, s.weights(), "nothing was applied")
}

// rawADS starts a control plane serving roundTripControlPlane and returns
// a bare ADS client of it, with a context that ends after 10s or with the
// test.
func rawADS(t *testing.T) (discovery.AggregatedDiscoveryServiceClient, context.Context) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cp.yaml")
	writeFile(t, path, roundTripControlPlane)
	cp := startCP(t, path, "")
	conn, err := grpc.NewClient(cp.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return discovery.NewAggregatedDiscoveryServiceClient(conn), ctx
}

// A request naming some of a type's resources is answered with those
// (the stock cache never answers it in ADS mode).
func TestNamedSubsetIsAnswered(t *testing.T) {
	ads, ctx := rawADS(t)
	st, err := ads.StreamAggregatedResources(ctx)
	require.NoError(t, err)
	node := &core.Node{Id: "subset", Cluster: "prod"}
	require.NoError(t, st.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: resourcev3.RouteType, ResourceNames: []string{"chat"}}))
	resp, err := st.Recv()
	require.NoError(t, err)
	require.Len(t, resp.Resources, 1)
	var rc route.RouteConfiguration
	require.NoError(t, resp.Resources[0].UnmarshalTo(&rc))
	assert.Equal(t, "chat", rc.Name)

	// Widening the subscription is answered with the wider set.
	require.NoError(t, st.Send(&discovery.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: []string{"chat", "iris"},
		VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce}))
	resp, err = st.Recv()
	require.NoError(t, err)
	assert.Len(t, resp.Resources, 2)
}

// A wildcard listener request (Envoy's) gets the HTTP listener only: Envoy
// takes API listeners from its bootstrap, never from LDS. A gRPC client
// names the API listener it wants and gets it.
func TestWildcardListenersLeaveOutAPIListeners(t *testing.T) {
	ads, ctx := rawADS(t)
	names := func(req *discovery.DiscoveryRequest) []string {
		st, err := ads.StreamAggregatedResources(ctx)
		require.NoError(t, err)
		require.NoError(t, st.Send(req))
		resp, err := st.Recv()
		require.NoError(t, err)
		var out []string
		for _, a := range resp.Resources {
			var l listener.Listener
			require.NoError(t, a.UnmarshalTo(&l))
			out = append(out, l.Name)
		}
		return out
	}
	node := &core.Node{Id: "envoy", Cluster: "prod"}
	assert.Equal(t, []string{HTTPListenerName}, names(&discovery.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType}))
	assert.Equal(t, []string{"iris"}, names(&discovery.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResourceNames: []string{"iris"}}))
}

const roundTripControlPlane = `groups:
  - name: prod
    models:
      - name: iris
        match: {path_prefix: /iris}
        versions: [{name: v1, endpoints: ["http://127.0.0.1:8501"]}]
      - name: chat
        match: {path_prefix: /chat}
        versions: [{name: v1, endpoints: ["http://127.0.0.1:8502"]}]
`
