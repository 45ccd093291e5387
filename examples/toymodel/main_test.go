package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vaneproxy/vane/internal/testutil"
)

func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var logs testutil.Buffer
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-listen", "127.0.0.1:0", "-version", "v2", "-name", "flowers"}, &logs,
			func(addr string) { addrc <- addr })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatalf("run ended early: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start")
	}
	assert.Contains(t, logs.String(), `serving model "flowers" version "v2" on http://`+addr)

	resp, err := http.Get("http://" + addr + "/v1/models/flowers")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	resp, err = http.Post("http://"+addr+"/v1/models/flowers:predict", "application/json",
		strings.NewReader(`{"instances": [[6.0, 3.4, 4.5, 1.6]]}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "v2", resp.Header.Get("X-Model-Version"))
	assert.Contains(t, string(body), `"predictions":[2]`)

	cancel()
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("no graceful shutdown")
	}
	assert.Contains(t, logs.String(), "stopped after 1 predict-like requests")
}

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"fail rate above 1", []string{"-fail-rate", "1.5"}, "-fail-rate"},
		{"negative delay", []string{"-delay", "-1s"}, "-delay"},
		{"unknown flag", []string{"-nope"}, "not defined"},
		{"extra argument", []string{"serve"}, "unexpected arguments"},
		{"bad listen address", []string{"-listen", "256.0.0.1:x"}, "listen"},
		{"bad grpc listen address", []string{"-listen", "127.0.0.1:0", "-grpc-listen", "256.0.0.1:x"}, "-grpc-listen"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(t.Context(), tc.args, io.Discard, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestRunServesGRPC(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var logs testutil.Buffer
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-listen", "127.0.0.1:0", "-grpc-listen", "127.0.0.1:0"}, &logs,
			func(addr string) { addrc <- addr })
	}()
	select {
	case <-addrc:
	case err := <-errc:
		t.Fatalf("run ended early: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start")
	}
	m := regexp.MustCompile(`gRPC ModelInfer and health on h2c://(\S+)`).FindStringSubmatch(logs.String())
	require.Len(t, m, 2, logs.String())
	conn, err := grpc.NewClient(m[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())

	cancel()
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("no graceful shutdown")
	}
}
