package health

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// ErrNotServing is wrapped by the error of a gRPC probe whose answer was
// not SERVING.
var ErrNotServing = errors.New("grpc health check answered not SERVING")

// grpcProber calls grpc.health.v1.Health/Check for the whole server
// (service "") over one cleartext HTTP/2 client connection that lives as
// long as the prober.
type grpcProber struct {
	addr   string
	conn   *grpc.ClientConn
	client healthpb.HealthClient
	err    error // from grpc.NewClient: every probe fails with it
}

func newGRPCProber(t Target) *grpcProber {
	p := &grpcProber{addr: t.Addr}
	interval := t.Health.Interval
	conn, err := grpc.NewClient(t.Addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithNoProxy(),
		grpc.WithUserAgent("vane-health"),
		// grpc-go backs off up to 2 minutes between reconnects; bounding it
		// by the probe interval lets a restarted endpoint pass its next
		// probes instead of failing them from a stale backoff.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  min(100*time.Millisecond, interval),
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   interval,
			},
			MinConnectTimeout: t.Health.Timeout,
		}),
	)
	if err != nil {
		p.err = fmt.Errorf("probing grpc://%s: %w", t.Addr, err)
		return p
	}
	p.conn = conn
	p.client = healthpb.NewHealthClient(conn)
	return p
}

func (p *grpcProber) probe(ctx context.Context) error {
	if p.err != nil {
		return p.err
	}
	resp, err := p.client.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return fmt.Errorf("probing grpc://%s: %w", p.addr, err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("probing grpc://%s: %w: %s", p.addr, ErrNotServing, s)
	}
	return nil
}

func (p *grpcProber) close() {
	if p.conn != nil {
		_ = p.conn.Close()
	}
}
