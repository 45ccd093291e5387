package xds

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	grpcxds "google.golang.org/grpc/xds"
)

// grpcBackend is a gRPC server (the health service is the RPC the test
// calls) on loopback; its address tells which version answered.
func grpcBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	return ln.Addr().String()
}

func proxylessFile(v1, v2 string, w1, w2 int) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
groups:
  - name: proxyless
    models:
      - name: echo
        match: {path_prefix: /}
        protocol: grpc
        timeout: 5s
        versions:
          - {name: v1, weight: %d, endpoints: ["h2c://%s"]}
          - {name: v2, weight: %d, endpoints: ["h2c://%s"]}
`, w1, v1, w2, v2)
}

// v2Share makes n calls and returns the share that v2's server answered.
func v2Share(t *testing.T, client healthpb.HealthClient, v2 string, n int) float64 {
	t.Helper()
	hits := 0
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var p peer.Peer
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p))
		cancel()
		require.NoError(t, err)
		if p.Addr.String() == v2 {
			hits++
		}
	}
	return float64(hits) / float64(n)
}

// A grpc-go client using the xds:/// resolver against the control plane
// splits its calls by the configured weights and follows a change.
func TestProxylessGRPCClientSplitsByWeight(t *testing.T) {
	v1, v2 := grpcBackend(t), grpcBackend(t)
	path := filepath.Join(t.TempDir(), "cp.yaml")
	writeFile(t, path, proxylessFile(v1, v2, 80, 20))
	cp := startCP(t, path, "")

	bootstrap := fmt.Sprintf(`{
  "xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
  "node": {"id": "proxyless-client", "cluster": "proxyless"}
}`, cp.addr)
	builder, err := grpcxds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	require.NoError(t, err)
	conn, err := grpc.NewClient("xds:///echo", grpc.WithResolvers(builder),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)

	// 500 calls at 20%: sd 1.8%, so ±8% is over four of them.
	assert.InDelta(t, 0.2, v2Share(t, client, v2, 500), 0.08)

	writeFile(t, path, proxylessFile(v1, v2, 10, 90))
	require.Eventually(t, func() bool { return v2Share(t, client, v2, 50) > 0.7 }, 10*time.Second, 20*time.Millisecond,
		"the client follows the weight change")
	assert.InDelta(t, 0.9, v2Share(t, client, v2, 500), 0.08)

	st := cp.cp.Status()
	require.Len(t, st.Groups, 1)
	assert.Contains(t, st.Groups[0].Nodes, "proxyless-client")
}
