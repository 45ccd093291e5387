package configs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

const (
	debounce = 50 * time.Millisecond
	waitFor  = 3 * time.Second
	tick     = 10 * time.Millisecond
	// quiet is how long a test waits to be sure no further call comes.
	quiet = 6 * debounce
)

// recorder is an onChange that records what the file held at each call.
type recorder struct {
	path string
	mu   sync.Mutex // guards seen
	seen []string
}

func (r *recorder) onChange() {
	data, err := os.ReadFile(r.path)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.seen = append(r.seen, "error: "+err.Error())
		return
	}
	r.seen = append(r.seen, string(data))
}

func (r *recorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// startWatch runs watch on path until the test ends, and returns once the
// watcher is ready. It checks that Watch returns nil and leaves no
// goroutine behind.
func startWatch(t *testing.T, path string) *recorder {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	r := &recorder{path: path}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- watch(ctx, path, "", debounce, r.onChange, t.Logf, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("watch ended early: %v", err)
	case <-time.After(waitFor):
		t.Fatal("watch not ready")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(waitFor):
			t.Error("watch did not stop after cancel")
		}
	})
	return r
}

// waitCalls waits until r has n calls, then makes sure no more come.
func waitCalls(t *testing.T, r *recorder, n int) []string {
	t.Helper()
	require.Eventually(t, func() bool { return len(r.calls()) >= n }, waitFor, tick, "want %d calls, got %q", n, r.calls())
	time.Sleep(quiet)
	calls := r.calls()
	require.Len(t, calls, n, "calls: %q", calls)
	return calls
}

// renameSave writes data the way editors do: a temporary file renamed over
// path.
func renameSave(t *testing.T, path, data string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".swp")
	require.NoError(t, os.WriteFile(tmp, []byte(data), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func TestWatchRenameSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vane.yaml")
	require.NoError(t, os.WriteFile(path, []byte("v0"), 0o600))
	r := startWatch(t, path)

	for i := 1; i <= 3; i++ {
		content := fmt.Sprintf("v%d", i)
		renameSave(t, path, content)
		calls := waitCalls(t, r, i)
		assert.Equal(t, content, calls[i-1])
	}
}

func TestWatchIdenticalBytesDoNotTrigger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vane.yaml")
	require.NoError(t, os.WriteFile(path, []byte("same"), 0o600))
	r := startWatch(t, path)

	renameSave(t, path, "same")
	require.NoError(t, os.WriteFile(path, []byte("same"), 0o600)) // in place too
	require.NoError(t, os.Chtimes(path, time.Now(), time.Now()))
	time.Sleep(quiet)
	assert.Empty(t, r.calls())

	// The watcher was alive all along: a real change is seen.
	renameSave(t, path, "different")
	assert.Equal(t, []string{"different"}, waitCalls(t, r, 1))
}

func TestWatchDebounceCoalesces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vane.yaml")
	require.NoError(t, os.WriteFile(path, []byte("v0"), 0o600))
	r := startWatch(t, path)

	for i := 1; i <= 10; i++ {
		require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf("burst %d", i)), 0o600))
		time.Sleep(debounce / 10)
	}
	assert.Equal(t, []string{"burst 10"}, waitCalls(t, r, 1))
}

func TestWatchFileRemovedAndBack(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vane.yaml")
	require.NoError(t, os.WriteFile(path, []byte("v0"), 0o600))
	r := startWatch(t, path)

	require.NoError(t, os.Remove(path))
	time.Sleep(quiet)
	require.NoError(t, os.WriteFile(path, []byte("v0"), 0o600))
	time.Sleep(quiet)
	assert.Empty(t, r.calls(), "missing, then the same bytes again: nothing to apply")

	require.NoError(t, os.WriteFile(path, []byte("v1"), 0o600))
	assert.Equal(t, []string{"v1"}, waitCalls(t, r, 1))
}

func TestWatchFileCreatedLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vane.yaml")
	r := startWatch(t, path)
	renameSave(t, path, "v1")
	assert.Equal(t, []string{"v1"}, waitCalls(t, r, 1))
}

// configMap lays out a directory the way the kubelet projects a ConfigMap
// volume, and updates it the same way.
type configMap struct {
	t   *testing.T
	dir string
	gen int
}

func newConfigMap(t *testing.T, content string) *configMap {
	cm := &configMap{t: t, dir: t.TempDir()}
	cm.update(content)
	// The user-visible name, made once: vane.yaml -> ..data/vane.yaml.
	require.NoError(t, os.Symlink(filepath.Join("..data", "vane.yaml"), cm.path()))
	return cm
}

func (cm *configMap) path() string { return filepath.Join(cm.dir, "vane.yaml") }

// update writes a new timestamped directory, points ..data_tmp at it,
// renames ..data_tmp over ..data and removes the old directory.
func (cm *configMap) update(content string) {
	t := cm.t
	old := cm.genDir()
	cm.gen++
	ts := cm.genDir()
	require.NoError(t, os.Mkdir(filepath.Join(cm.dir, ts), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(cm.dir, ts, "vane.yaml"), []byte(content), 0o644))
	require.NoError(t, os.Symlink(ts, filepath.Join(cm.dir, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(cm.dir, "..data_tmp"), filepath.Join(cm.dir, "..data")))
	if cm.gen > 1 {
		require.NoError(t, os.RemoveAll(filepath.Join(cm.dir, old)))
	}
}

func (cm *configMap) genDir() string {
	return fmt.Sprintf("..2026_11_28_21_00_%02d.%d", cm.gen, 1000+cm.gen)
}

func TestWatchConfigMapSwap(t *testing.T) {
	cm := newConfigMap(t, "generation 0")
	data, err := os.ReadFile(cm.path())
	require.NoError(t, err)
	require.Equal(t, "generation 0", string(data), "the layout resolves")
	r := startWatch(t, cm.path())

	want := []string{}
	for i := 1; i <= 5; i++ {
		content := fmt.Sprintf("generation %d", i)
		cm.update(content)
		want = append(want, content)
		assert.Equal(t, want, waitCalls(t, r, i), "swap %d", i)
	}
}

func TestWatchMissingDirectory(t *testing.T) {
	err := Watch(context.Background(), filepath.Join(t.TempDir(), "nope", "vane.yaml"), debounce, func() {}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "watching config")

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	err = Watch(context.Background(), filepath.Join(file, "vane.yaml"), debounce, func() {}, nil)
	require.Error(t, err)
}

func TestWatchStopsOnCancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path := filepath.Join(t.TempDir(), "vane.yaml")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, path, debounce, func() {}, nil) }()
	time.Sleep(quiet)
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("Watch did not return after cancel")
	}
}

// A symlink to a file in another directory: edits there are seen too.
func TestWatchSymlinkTarget(t *testing.T) {
	target := filepath.Join(t.TempDir(), "real.yaml")
	require.NoError(t, os.WriteFile(target, []byte("v0"), 0o600))
	path := filepath.Join(t.TempDir(), "vane.yaml")
	require.NoError(t, os.Symlink(target, path))
	r := startWatch(t, path)

	renameSave(t, target, "v1")
	assert.Equal(t, []string{"v1"}, waitCalls(t, r, 1))
	renameSave(t, target, "v2")
	assert.Equal(t, []string{"v1", "v2"}, waitCalls(t, r, 2))
}

func TestWatchFromCatchesAChangeBeforeWatching(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vane.yaml")
	require.NoError(t, os.WriteFile(path, []byte("listen: a\n"), 0o600))
	loaded := Hash([]byte("listen: a\n"))
	// The file changes after the caller loaded it but before Watch starts.
	require.NoError(t, os.WriteFile(path, []byte("listen: b\n"), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	called := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- WatchFrom(ctx, path, loaded, time.Hour, func() { called <- struct{}{} }, t.Logf)
	}()
	select {
	case <-called:
	case <-time.After(5 * time.Second):
		t.Fatal("a change made before watching started was missed")
	}
	cancel()
	require.NoError(t, <-done)
}
