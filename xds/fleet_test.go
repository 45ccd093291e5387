package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// cpFile is a control plane file with one group, prod, whose model iris
// splits v1:v2 as w1:w2.
func cpFile(w1, w2 int) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
groups:
  - name: prod
    models:
      - name: iris
        match: {path_prefix: /v1/models/iris}
        protocol: kserve-v1
        versions:
          - {name: v1, weight: %d, endpoints: ["http://127.0.0.1:8501"]}
          - {name: v2, weight: %d, endpoints: ["http://127.0.0.1:8502"]}
  - name: staging
    models:
      - name: other
        match: {path_prefix: /other}
        versions:
          - {name: a, endpoints: ["http://127.0.0.1:8600"]}
`, w1, w2)
}

const sidecarBase = "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nxds: {server: 127.0.0.1:1, cluster: prod}\n"

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// runningCP is a control plane serving on loopback.
type runningCP struct {
	cp   *ControlPlane
	path string
	addr string
	stop func()
}

func startCP(t *testing.T, path, addr string) *runningCP {
	t.Helper()
	reg := prometheus.NewRegistry()
	cp, err := NewControlPlane(ControlPlaneOptions{ConfigPath: path, Registerer: reg, Gatherer: reg, Logger: quiet(),
		WatchDebounce: 20 * time.Millisecond})
	require.NoError(t, err)
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	require.Eventually(t, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	}, 5*time.Second, 50*time.Millisecond, "binding %s", addr)
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ready := make(chan struct{})
	cp.opts.Ready = func(net.Addr, net.Addr) { close(ready) }
	go func() {
		defer close(done)
		assert.NoError(t, cp.Serve(ctx, ln, aln))
	}()
	<-ready
	r := &runningCP{cp: cp, path: path, addr: ln.Addr().String()}
	var once sync.Once
	r.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(r.stop)
	return r
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// sidecar is a Client whose Apply records the configs it is given.
type sidecar struct {
	c *Client
	// mu guards cfg, applies and results.
	mu      sync.Mutex
	cfg     *configs.Config
	applies int
	results []string // "rds ack", "cds nack", ...
	reject  func(*configs.Config) error
}

func startSidecar(t *testing.T, servers []string, mod func(*ClientOptions)) *sidecar {
	t.Helper()
	s := &sidecar{}
	opts := ClientOptions{
		Servers: servers, NodeID: "node-" + t.Name(), Cluster: "prod", Base: []byte(sidecarBase),
		Registerer: prometheus.NewRegistry(), Logger: quiet(),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Apply: func(cfg *configs.Config, _ []byte) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.reject != nil {
				if err := s.reject(cfg); err != nil {
					return err
				}
			}
			s.cfg = cfg
			s.applies++
			return nil
		},
		OnResult: func(typ, _ string, err error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			r := typ + " ack"
			if err != nil {
				r = typ + " nack"
			}
			s.results = append(s.results, r)
		},
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := NewClient(opts)
	require.NoError(t, err)
	s.c = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		assert.NoError(t, c.Run(ctx))
	}()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func (s *sidecar) weights() []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg == nil || len(s.cfg.Models) == 0 {
		return nil
	}
	var out []float64
	for _, v := range s.cfg.Models[0].Versions {
		out = append(out, v.Weight)
	}
	return out
}

func (s *sidecar) resultsSince(n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.results[n:]...)
}

func (s *sidecar) resultCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.results)
}

func waitWeights(t *testing.T, s *sidecar, want ...float64) {
	t.Helper()
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, s.weights()) },
		10*time.Second, 10*time.Millisecond, "weights %v, got %v", want, s.weights())
}

func TestSidecarFollowsAWeightChangeAndOnlyRoutesAreSent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.yaml")
	writeFile(t, path, cpFile(90, 10))
	cp := startCP(t, path, "")
	s := startSidecar(t, []string{cp.addr}, nil)
	waitWeights(t, s, 90, 10)
	require.Eventually(t, func() bool { return s.resultCount() >= 3 }, 5*time.Second, 10*time.Millisecond)
	n := s.resultCount()
	st := s.c.Status()
	assert.True(t, st.Connected)
	assert.Equal(t, cp.cp.Cache().Versions("prod")["rds"], st.Versions["rds"])

	writeFile(t, path, cpFile(50, 50))
	waitWeights(t, s, 50, 50)
	writeFile(t, path, cpFile(20, 80))
	waitWeights(t, s, 20, 80)
	// The ACK follows the apply.
	require.Eventually(t, func() bool { return len(s.resultsSince(n)) >= 2 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, []string{"rds ack", "rds ack"}, s.resultsSince(n), "a weight change sends the routes only")
	assert.Equal(t, "prod", s.c.Status().Cluster)
	assert.Equal(t, []string{"iris"}, []string{s.cfg.Models[0].Name}, "the sidecar gets its group's models only")
}

func TestInvalidFileIsRejectedAndTheLastGoodServed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.yaml")
	writeFile(t, path, cpFile(90, 10))
	cp := startCP(t, path, "")
	before := cp.cp.Cache().Versions("prod")
	_, err := cp.cp.ReloadBytes([]byte(strings.Replace(cpFile(90, 10), "weight: 10", "weight: -10", 1)))
	require.Error(t, err)
	var probs configs.Errors
	require.True(t, errors.As(err, &probs))
	assert.Contains(t, err.Error(), "groups[0].models[0].versions[1].weight (line 11): must be >= 0, got -10")
	assert.Equal(t, before, cp.cp.Cache().Versions("prod"))

	s := startSidecar(t, []string{cp.addr}, nil)
	waitWeights(t, s, 90, 10)
}

// A sidecar that rejects an update NACKs it once; the control plane
// parks the watch instead of re-sending, the old config keeps serving,
// and the next good update is applied.
func TestRejectedUpdateIsNACKedOnceAndNeverLoops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.yaml")
	writeFile(t, path, cpFile(90, 10))
	cp := startCP(t, path, "")
	s := startSidecar(t, []string{cp.addr}, nil)
	waitWeights(t, s, 90, 10)
	require.Eventually(t, func() bool { return s.resultCount() >= 3 }, 5*time.Second, 10*time.Millisecond, "initial cds, eds, rds acks")
	s.mu.Lock()
	s.reject = func(cfg *configs.Config) error {
		if cfg.Models[0].Versions[0].Weight == 66 {
			return errors.New("models[0]: this sidecar refuses 66")
		}
		return nil
	}
	s.mu.Unlock()
	n := s.resultCount()
	writeFile(t, path, cpFile(66, 34))
	require.Eventually(t, func() bool { return len(s.resultsSince(n)) >= 1 }, 5*time.Second, 10*time.Millisecond)
	// Long enough for a storm to show: the stock cache re-sends at once,
	// over a thousand times a second.
	time.Sleep(500 * time.Millisecond)
	assert.Equal(t, []string{"rds nack"}, s.resultsSince(n))
	assert.Equal(t, []float64{90, 10}, s.weights(), "the old config keeps serving")
	st := s.c.Status()
	require.NotNil(t, st.LastNACK)
	assert.Contains(t, st.LastNACK.Error, "refuses 66")
	assert.Contains(t, cp.cp.Status().LastNACK.Error, "refuses 66")

	writeFile(t, path, cpFile(30, 70))
	waitWeights(t, s, 30, 70)
}

func TestFailsOverToTheSecondServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.yaml")
	writeFile(t, path, cpFile(90, 10))
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())
	cp := startCP(t, path, "")
	s := startSidecar(t, []string{dead, cp.addr}, nil)
	waitWeights(t, s, 90, 10)
	assert.Equal(t, cp.addr, s.c.Status().Server)
}

func TestResyncsAfterTheControlPlaneRestarts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cp.yaml")
	writeFile(t, path, cpFile(90, 10))
	cp := startCP(t, path, "")
	s := startSidecar(t, []string{cp.addr}, func(o *ClientOptions) { o.StateDir = dir })
	waitWeights(t, s, 90, 10)
	applies := s.applies

	cp.stop()
	require.Eventually(t, func() bool { return !s.c.Status().Connected }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, []float64{90, 10}, s.weights(), "the sidecar keeps its config while the control plane is away")
	cp2 := startCP(t, path, cp.addr)
	require.Eventually(t, func() bool { return s.c.Status().Connected }, 5*time.Second, 10*time.Millisecond)
	s.mu.Lock()
	assert.Equal(t, applies, s.applies, "same content, same versions: nothing re-sent or re-applied")
	s.mu.Unlock()
	writeFile(t, cp2.path, cpFile(40, 60))
	waitWeights(t, s, 40, 60)

	// What a restarted sidecar would serve while the control plane is down.
	// It is written right after the apply.
	require.Eventually(t, func() bool {
		cfg, _, err := LoadLastGood(dir, []byte(sidecarBase))
		return err == nil && cfg.Models[0].Versions[0].Weight == 40
	}, 5*time.Second, 10*time.Millisecond)
}
