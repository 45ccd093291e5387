package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/internal/testutil"
)

// fleetProc is a running vane process (control-plane or serve).
type fleetProc struct {
	cmd    *exec.Cmd
	stderr *testutil.Buffer
	exited chan struct{}
}

func startVane(t *testing.T, args ...string) *fleetProc {
	t.Helper()
	p := &fleetProc{cmd: exec.Command(vaneBinary(t), args...), stderr: &testutil.Buffer{}, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0 exitcode=66")
	p.cmd.Stderr = p.stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", args[0], p.stderr.String())
		}
	})
	return p
}

// stop ends the process (SIGTERM, then SIGKILL) and waits for it.
func (p *fleetProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func waitOK(t *testing.T, url string) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond, "%s never answered 200", url)
}

// versionBackend answers every request with its name.
func versionBackend(t *testing.T, name string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func cpConfig(listen, admin, v1, v2 string, w1, w2 int) string {
	return fmt.Sprintf(`listen: %q
admin: {listen: %q}
groups:
  - name: prod
    models:
      - name: iris
        match: {path_prefix: /iris}
        health: {interval: 100ms, timeout: 50ms, healthy_threshold: 1}
        versions:
          - {name: v1, weight: %d, endpoints: [%q]}
          - {name: v2, weight: %d, endpoints: [%q]}
`, listen, admin, w1, v1, w2, v2)
}

// share sends n requests and returns the share that v2 served; any
// failed request fails the test.
func share(t *testing.T, url string, n int) float64 {
	t.Helper()
	v2 := 0
	for range n {
		resp, err := http.Get(url)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		if string(body) == "v2" {
			v2++
		}
	}
	return float64(v2) / float64(n)
}

func rewrite(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path+".tmp", []byte(content), 0o600))
	require.NoError(t, os.Rename(path+".tmp", path))
}

// A vane serve with xds routes by the control plane's weights, follows a
// change, keeps serving without a failed request while the control plane
// restarts, and resyncs with it.
func TestServeWithXDSFollowsTheControlPlane(t *testing.T) {
	b1, b2 := versionBackend(t, "v1"), versionBackend(t, "v2")
	dir := t.TempDir()
	cpListen, cpAdmin := freeAddr(t), freeAddr(t)
	cpPath := filepath.Join(dir, "cp.yaml")
	rewrite(t, cpPath, cpConfig(cpListen, cpAdmin, b1.URL, b2.URL, 80, 20))
	cp := startVane(t, "control-plane", "-config", cpPath)
	waitOK(t, "http://"+cpAdmin+"/readyz")

	listen, admin := freeAddr(t), freeAddr(t)
	servePath := filepath.Join(dir, "vane.yaml")
	state := filepath.Join(dir, "state")
	require.NoError(t, os.Mkdir(state, 0o700))
	rewrite(t, servePath, fmt.Sprintf("listen: %q\nadmin: {listen: %q}\nstate_dir: %q\nxds: {server: %q, cluster: prod, node_id: sidecar-1}\n",
		listen, admin, state, cpListen))
	startVane(t, "serve", "-config", servePath)
	waitOK(t, "http://"+admin+"/readyz")
	url := "http://" + listen + "/iris"

	// 400 calls at 20%: sd 2%, so ±8% is four of them.
	assert.InDelta(t, 0.2, share(t, url, 400), 0.08)

	var st struct {
		Source struct {
			Source    string            `json:"source"`
			Connected bool              `json:"connected"`
			Versions  map[string]string `json:"versions"`
		} `json:"source"`
	}
	resp, err := http.Get("http://" + admin + "/status")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	_ = resp.Body.Close()
	assert.Equal(t, "xds", st.Source.Source)
	assert.True(t, st.Source.Connected)
	assert.NotEmpty(t, st.Source.Versions["rds"])

	rewrite(t, cpPath, cpConfig(cpListen, cpAdmin, b1.URL, b2.URL, 0, 1))
	require.Eventually(t, func() bool { return share(t, url, 20) == 1 }, 10*time.Second, 50*time.Millisecond)

	// Traffic all through the restart; not one request may fail.
	var failed, sent atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := client.Get(url)
			sent.Add(1)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, resp.Status)
			}
		}
	}()
	cp.stop()
	time.Sleep(300 * time.Millisecond) // the sidecar notices and keeps serving
	rewrite(t, cpPath, cpConfig(cpListen, cpAdmin, b1.URL, b2.URL, 1, 0))
	startVane(t, "control-plane", "-config", cpPath)
	waitOK(t, "http://"+cpAdmin+"/readyz")
	require.Eventually(t, func() bool { return share(t, url, 10) == 0 }, 10*time.Second, 50*time.Millisecond,
		"the sidecar resyncs with the restarted control plane")
	close(stop)
	wg.Wait()
	assert.Zero(t, failed.Load(), "failed requests out of %d during the restart; first: %v", sent.Load(), firstErr.Load())
	assert.Positive(t, sent.Load())

	metrics, err := http.Get("http://" + admin + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(metrics.Body)
	_ = metrics.Body.Close()
	assert.Contains(t, string(body), "vane_xds_connected 1")
	assert.Contains(t, string(body), `vane_xds_updates_total{result="ack",type="rds"}`)
	// The last good is kept for a restart while the control plane is down.
	kept, err := os.ReadFile(filepath.Join(state, "xds-last-good.yaml"))
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(kept), "v1"), "persisted config names the versions")
}

func TestControlPlaneRejectsABadFileNamingTheField(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cp.yaml")
	bad := strings.Replace(cpConfig("127.0.0.1:0", "127.0.0.1:0", "http://127.0.0.1:1", "http://127.0.0.1:2", 1, 1),
		"weight: 1,", "weight: -1,", 1)
	rewrite(t, path, bad)
	code, _, errOut := runCmd("control-plane", "-config", path)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "groups[0].models[0].versions[0].weight (line 10): must be >= 0, got -1")
}
