package health

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vaneproxy/vane/configs"
)

// grpcBackend is a real grpc-go server with the standard health service.
type grpcBackend struct {
	addr   string
	health *grpchealth.Server
}

func newGRPCBackend(t *testing.T, status healthpb.HealthCheckResponse_ServingStatus) *grpcBackend {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	hs := grpchealth.NewServer()
	hs.SetServingStatus("", status)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return &grpcBackend{addr: lis.Addr().String(), health: hs}
}

func grpcTarget(b *grpcBackend, h configs.Health) Target {
	url := "h2c://" + b.addr
	return Target{Key: Key("triton", "v1", url), Model: "triton", Version: "v1", URL: url,
		Scheme: "h2c", Addr: b.addr, Protocol: configs.ProtocolGRPC, Health: h, Breaker: testBreaker()}
}

func TestGRPCProbe(t *testing.T) {
	tests := []struct {
		name   string
		status healthpb.HealthCheckResponse_ServingStatus
		pass   bool
	}{
		{"serving", healthpb.HealthCheckResponse_SERVING, true},
		{"not serving", healthpb.HealthCheckResponse_NOT_SERVING, false},
		{"unknown", healthpb.HealthCheckResponse_UNKNOWN, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newGRPCBackend(t, tt.status)
			p := newProber(grpcTarget(b, configs.Health{Interval: configs.DefaultHealthInterval, Timeout: time.Second}))
			defer p.close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			err := p.probe(ctx)
			if tt.pass {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrNotServing)
			}
		})
	}
}

func TestGRPCProbeNoServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	p := newProber(Target{Scheme: "h2c", Addr: addr, Health: configs.Health{Interval: configs.DefaultHealthInterval, Timeout: time.Second}})
	defer p.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	assert.Error(t, p.probe(ctx))
}

func TestGRPCEndpointHealth(t *testing.T) {
	b := newGRPCBackend(t, healthpb.HealthCheckResponse_NOT_SERVING)
	f := newFixture(t)
	h := fastHealth(2, 2)
	h.Path = "" // the grpc default: the health service
	tg := grpcTarget(b, h)
	f.Update([]Target{tg})
	f.run(t)
	require.Eventually(t, func() bool {
		return counterValue(t, f.reg, "vane_health_probes_total", "fail") >= 2
	}, waitFor, tick)
	assert.False(t, f.Routable(tg.Key))

	b.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	f.waitRoutable(t, tg.Key, true)
	b.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	f.waitRoutable(t, tg.Key, false)
	f.changes.waitChanges(t, tg.Key, true, false)
}
