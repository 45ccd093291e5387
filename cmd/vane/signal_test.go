package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/internal/testutil"
)

// The signal tests run the real binary, as an orchestrator would: built
// once, started with `vane serve`, stopped with SIGTERM.

var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vane-signal-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// vaneBinary builds the vane binary on first use; tests that need it skip
// when the go tool is not installed.
func vaneBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not installed: cannot build the vane binary")
	}
	binOnce.Do(func() {
		binPath = filepath.Join(binDir, "vane")
		args := []string{"build", "-o", binPath}
		if raceEnabled() {
			// Same flags as this test binary: the packages come from the
			// build cache, and the race detector watches the process too.
			args = append(args, "-race")
		}
		out, err := exec.Command(goTool, append(args, ".")...).CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, binError)
	return binPath
}

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// process is a running `vane serve`.
type process struct {
	cmd          *exec.Cmd
	listen       string
	admin        string
	stderr       *testutil.Buffer
	exited       chan struct{}
	waitErr      error
	exitedAt     time.Time
	drainTimeout time.Duration
}

// startServe writes a config for one model served by backendURL and starts
// `vane serve` on it, waiting until /readyz answers 200.
func startServe(t *testing.T, backendURL string, drain, timeout time.Duration) *process {
	t.Helper()
	bin := vaneBinary(t)
	p := &process{listen: freeAddr(t), admin: freeAddr(t), stderr: &testutil.Buffer{}, exited: make(chan struct{}), drainTimeout: drain}
	cfg := fmt.Sprintf(`
listen: %q
admin:
  listen: %q
shutdown:
  drain_timeout: %s
models:
  - name: iris
    match:
      path_prefix: /v1/models/iris
    protocol: kserve-v1
    timeout: %s
    health:
      interval: 200ms
      timeout: 100ms
    versions:
      - name: v1
        endpoints: [%q]
`, p.listen, p.admin, drain, timeout, backendURL)
	path := filepath.Join(t.TempDir(), "vane.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	p.cmd = exec.Command(bin, "serve", "-config", path)
	// A race-enabled binary sleeps 1s at exit by default; report races
	// with exit code 66 at once instead.
	p.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0 exitcode=66")
	p.cmd.Stderr = p.stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		p.waitErr = p.cmd.Wait()
		p.exitedAt = time.Now()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("vane's log:\n%s", p.stderr.String())
		}
	})
	require.Eventually(t, func() bool {
		select {
		case <-p.exited:
			t.Fatalf("vane exited at start: %v\n%s", p.waitErr, p.stderr.String())
		default:
		}
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond, "vane never became ready")
	return p
}

func (p *process) signal(t *testing.T, s os.Signal) time.Time {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(s))
	return time.Now()
}

// exitCode waits up to limit for the process to exit and returns its
// exit code.
func (p *process) exitCode(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(limit):
		t.Fatalf("vane did not exit within %s", limit)
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, p.waitErr)
	return 0
}

// slowBackend answers GET probes at once and holds each POST for hold (or
// until the test releases it).
type slowBackend struct {
	*httptest.Server
	inside  atomic.Int64
	release chan struct{}
}

func newSlowBackend(t *testing.T, hold time.Duration) *slowBackend {
	t.Helper()
	b := &slowBackend{release: make(chan struct{})}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost {
			b.inside.Add(1)
			select {
			case <-time.After(hold):
			case <-b.release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"predictions":[1]}`)
	}))
	t.Cleanup(func() {
		close(b.release)
		b.Close()
	})
	return b
}

// fire sends n requests at once, each on its own connection, and returns
// a channel that yields each one's status (-1 for a transport error).
func fire(url string, n int) <-chan int {
	codes := make(chan int, n)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		go func() {
			resp, err := client.Post(url, "application/json", strings.NewReader(`{"instances":[[1,2,3,4]]}`))
			if err != nil {
				codes <- -1
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				codes <- -1
				return
			}
			codes <- resp.StatusCode
		}()
	}
	return codes
}

// TestSIGTERMDrainsInFlightRequests: 20 requests in flight on a backend
// that takes 1s each; SIGTERM; all 20 complete with 200, new connections
// are refused at once, and vane exits 0 well within drain_timeout (5s).
func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	const n = 20
	be := newSlowBackend(t, time.Second)
	p := startServe(t, be.URL, 5*time.Second, 10*time.Second)
	codes := fire("http://"+p.listen+"/v1/models/iris:predict", n)
	require.Eventually(t, func() bool { return be.inside.Load() == n }, 5*time.Second, 5*time.Millisecond,
		"the %d requests never reached the backend together", n)

	sent := p.signal(t, syscall.SIGTERM)
	// The listener closes at once: new connections are refused while the
	// 20 requests are still running.
	var refusedAfter time.Duration
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", p.listen, 100*time.Millisecond)
		if err != nil {
			refusedAfter = time.Since(sent)
			return errors.Is(err, syscall.ECONNREFUSED)
		}
		_ = c.Close()
		return false
	}, 500*time.Millisecond, 5*time.Millisecond, "new connections still accepted after SIGTERM")

	got := map[int]int{}
	for range n {
		select {
		case c := <-codes:
			got[c]++
		case <-time.After(10 * time.Second):
			t.Fatalf("in-flight requests never completed: %v", got)
		}
	}
	assert.Equal(t, map[int]int{200: n}, got, "every in-flight request completes")
	assert.Equal(t, 0, p.exitCode(t, p.drainTimeout), "exit code after a complete drain")
	exitAfter := p.exitedAt.Sub(sent)
	assert.Less(t, exitAfter, p.drainTimeout)
	assert.Contains(t, p.stderr.String(), "drained; bye")
	t.Logf("SIGTERM with %d requests in flight: refused new connections after %s, all %d answered 200, exit 0 after %s",
		n, refusedAfter.Round(time.Millisecond), got[200], exitAfter.Round(time.Millisecond))
}

// TestSecondSIGTERMExitsAtOnce: requests that would hang for 30s keep the
// drain (drain_timeout 20s) waiting; a second SIGTERM ends the process at
// once with exit code 1.
func TestSecondSIGTERMExitsAtOnce(t *testing.T) {
	be := newSlowBackend(t, 30*time.Second)
	p := startServe(t, be.URL, 20*time.Second, 40*time.Second)
	codes := fire("http://"+p.listen+"/v1/models/iris:predict", 3)
	require.Eventually(t, func() bool { return be.inside.Load() == 3 }, 5*time.Second, 5*time.Millisecond)

	p.signal(t, syscall.SIGTERM)
	// Draining has begun once the listener refuses connections.
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", p.listen, 100*time.Millisecond)
		if err != nil {
			return true
		}
		_ = c.Close()
		return false
	}, 2*time.Second, 5*time.Millisecond)
	select {
	case <-p.exited:
		t.Fatal("vane exited before the drain could finish")
	case <-time.After(200 * time.Millisecond):
	}
	second := p.signal(t, syscall.SIGTERM)
	code := p.exitCode(t, 2*time.Second)
	took := p.exitedAt.Sub(second)
	assert.Equal(t, 1, code, "a drain cut short is not a clean exit: code 1, as documented")
	assert.Less(t, took, time.Second, "the second signal exits at once")
	assert.Contains(t, p.stderr.String(), "second signal")
	// The requests that were cut off get a transport error, not a hang.
	for range 3 {
		select {
		case c := <-codes:
			assert.Equal(t, -1, c)
		case <-time.After(5 * time.Second):
			t.Fatal("a request cut off by the exit never returned")
		}
	}
	t.Logf("second SIGTERM: exit code %d after %s", code, took.Round(time.Millisecond))
}
