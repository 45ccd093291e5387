package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runFromFile runs vane with Run on a config file, as `vane serve` does.
type running struct {
	path, url, admin string
	reload           chan struct{}
	cancel           func()
	done             chan error
}

func runFromFile(t *testing.T, yaml string) *running {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vane.yaml")
	writeAtomic(t, path, yaml)
	return runAt(t, path)
}

// runAt runs vane on an existing config file and waits until it is ready.
func runAt(t *testing.T, path string) *running {
	t.Helper()
	r := &running{path: path, reload: make(chan struct{}, 1), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	ready := make(chan [2]string, 1)
	go func() {
		r.done <- Run(ctx, RunOptions{ConfigPath: r.path, Reload: r.reload, Logger: testLogger(t),
			WatchDebounce: 50 * time.Millisecond,
			Ready:         func(d, a net.Addr) { ready <- [2]string{d.String(), a.String()} }})
	}()
	select {
	case a := <-ready:
		r.url, r.admin = "http://"+a[0], "http://"+a[1]
	case err := <-r.done:
		t.Fatalf("vane did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	waitReady(t, r.admin)
	return r
}

// writeAtomic writes like an editor or `kubectl cp` would: a temporary
// file renamed over the target.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func fileConfig(b1, b2 string, w1, w2 int) string {
	c := twoVersions(b1, b2, float64(w1), float64(w2), "")
	return strings.Replace(c, `listen: "127.0.0.1:1"`, `listen: "localhost:0"`, 1)
}

func statusOfRunning(t *testing.T, admin string) Status {
	t.Helper()
	resp, err := http.Get(admin + "/status")
	require.NoError(t, err)
	defer resp.Body.Close()
	var st Status
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return st
}

func TestReloadUnderLoadLosesNothing(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	r := runFromFile(t, fileConfig(b1.URL, b2.URL, 90, 10))

	// Each answer must come from the version vane says it routed to.
	l := startLoadChecked(t, r.url+"/v1/models/iris:predict", 4, func(resp *http.Response) bool {
		return resp.Header.Get("X-Vane-Version") == resp.Header.Get("X-Backend-Version")
	})
	for i, w := range []int{80, 50, 20, 70, 40} {
		writeAtomic(t, r.path, fileConfig(b1.URL, b2.URL, w, 100-w))
		require.Eventually(t, func() bool {
			return statusOfRunning(t, r.admin).Models[0].Versions[0].Weight == float64(w)
		}, 2*time.Second, 20*time.Millisecond, "rewrite %d (v1=%d) not applied within 2s", i, w)
	}
	// SIGHUP path: the file changes and the reload channel fires at once.
	r.reload <- struct{}{}
	l.end()
	assert.Zero(t, l.failed.Load(), "failures: %v", l.samples)
	assert.Greater(t, l.ok.Load(), int64(100))
}

func TestInvalidConfigKeepsOldOneServing(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	r := runFromFile(t, fileConfig(b1.URL, b2.URL, 80, 20))
	before := statusOfRunning(t, r.admin).ConfigHash

	bad := strings.Replace(fileConfig(b1.URL, b2.URL, 80, 20), "weight: 20", "weight: -5", 1)
	writeAtomic(t, r.path, bad)
	require.Eventually(t, func() bool {
		return strings.Contains(metricsText(t, r.admin), "vane_config_last_reload_successful 0")
	}, 3*time.Second, 20*time.Millisecond)
	assert.Equal(t, before, statusOfRunning(t, r.admin).ConfigHash)
	resp, _ := post(t, r.url+"/v1/models/iris:predict", "{}", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// POST /reload answers 400 with the problems, naming the field.
	resp, body := post(t, r.admin+"/reload", "", nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, body, "models[0].versions[1].weight")
	assert.Contains(t, metricsText(t, r.admin), `vane_config_reloads_total{result="failure"}`)

	// Fixing the file recovers.
	writeAtomic(t, r.path, fileConfig(b1.URL, b2.URL, 60, 40))
	require.Eventually(t, func() bool {
		return strings.Contains(metricsText(t, r.admin), "vane_config_last_reload_successful 1")
	}, 3*time.Second, 20*time.Millisecond)
	resp, body = post(t, r.admin+"/reload", "", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, statusOfRunning(t, r.admin).ConfigHash)
}

func TestConfigMapSwapIsApplied(t *testing.T) {
	b1, b2 := backend(t, "v1"), backend(t, "v2")
	cm := newConfigMapDir(t, fileConfig(b1.URL, b2.URL, 90, 10))
	admin := runAt(t, cm.path()).admin
	for i := 1; i <= 6; i++ {
		w := 10 * i
		cm.swap(t, fileConfig(b1.URL, b2.URL, w, 100-w))
		require.Eventually(t, func() bool {
			return statusOfRunning(t, admin).Models[0].Versions[0].Weight == float64(w)
		}, 3*time.Second, 20*time.Millisecond, "swap %d not applied within 3s", i)
	}
}

func metricsText(t *testing.T, admin string) string {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// waitReady waits until health probes made every model routable.
func waitReady(t testing.TB, admin string) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(admin + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 5*time.Millisecond, "vane never became ready")
}
