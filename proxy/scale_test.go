//go:build linux

package proxy

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/vaneproxy/vane/configs"
)

// manyModels is a config of n models (one version, one endpoint each) and
// manyVersions one of a model with n versions. The endpoints point at a
// closed port: probes fail fast and nothing is served.
func manyModels(n int) string {
	var b strings.Builder
	b.WriteString("listen: \"127.0.0.1:0\"\nadmin:\n  listen: \"127.0.0.1:1\"\nmodels:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: m%d\n    match: {path_prefix: /m%d/}\n    health: {interval: 1h}\n    versions:\n      - {name: v1, endpoints: [\"http://127.0.0.1:9\"]}\n", i, i)
	}
	return b.String()
}

func manyVersions(n int) string {
	var b strings.Builder
	b.WriteString("listen: \"127.0.0.1:0\"\nadmin:\n  listen: \"127.0.0.1:1\"\nmodels:\n  - name: big\n    match: {path_prefix: /}\n    health: {interval: 1h}\n    versions:\n")
	for i := range n {
		fmt.Fprintf(&b, "      - {name: v%d, weight: %d, endpoints: [\"http://127.0.0.1:%d\"]}\n", i, 1+i%7, 10000+i)
	}
	return b.String()
}

// reloadCost loads from, then reloads to on a Server that is not serving
// (no probes run), and returns the reload's CPU time on its own thread: the
// fastest of tries. Thread CPU time is what the reload itself computed,
// whatever else the machine runs.
func reloadCost(t testing.TB, from, to string, tries int) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	best := time.Duration(1<<63 - 1)
	for range tries {
		cfg, err := configs.Parse([]byte(from))
		require.NoError(t, err)
		reg := NewRegistry()
		srv, err := New(cfg, []byte(from), Options{Registerer: reg, Gatherer: reg, Logger: testLogger(t)})
		require.NoError(t, err)
		runtime.GC()
		start := threadCPU()
		_, err = srv.ReloadBytes([]byte(to))
		d := threadCPU() - start
		require.NoError(t, err)
		best = min(best, d)
	}
	return best
}

// threadCPU is the CPU time of the calling OS thread.
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic(e)
	}
	return time.Duration(ts.Nano())
}

// Reloads are near-linear: a reload of four times as many models (or
// versions) costs far less than sixteen times as much, as an O(n²) step
// would (the monitor's DeletePartialMatch, swrrCycle, modelIndex were).
// The assertion is on the ratio of the reloads' own CPU time between two
// sizes, with a wide margin (linear: 4; quadratic: 16).
func TestReloadScalesLinearly(t *testing.T) {
	const small, large = 200, 800
	one := manyModels(1)
	for _, tc := range []struct {
		name string
		cfg  func(int) string
		back bool // reload from the big config to one model
	}{
		{"models to one", manyModels, true},
		{"versions", manyVersions, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			measure := func(n int) time.Duration {
				if tc.back {
					return reloadCost(t, tc.cfg(n), one, 2)
				}
				return reloadCost(t, one, tc.cfg(n), 2)
			}
			ds, dl := measure(small), measure(large)
			ratio := float64(dl) / float64(max(ds, time.Microsecond))
			t.Logf("%s: n=%d %v, n=%d %v, ratio %.1f (linear 4, quadratic 16)", tc.name, small, ds, large, dl, ratio)
			require.Less(t, ratio, 9.0, "reload cost grows faster than linearly")
		})
	}
}

// reloadWall reloads a serving vane (probes running) from from to to, after
// its first probes, and returns the reload's wall time.
func reloadWall(t testing.TB, from, to string) time.Duration {
	v := startVaneUnready(t, from)
	time.Sleep(2 * time.Second) // the first probes of every endpoint
	start := time.Now()
	_, err := v.srv.ReloadBytes([]byte(to))
	d := time.Since(start)
	require.NoError(t, err)
	require.NoError(t, v.stop())
	return d
}

// TestReloadAtScale measures the supported scale (10,000 models to 1, and
// 10,000 versions in one model); VANE_SOAK=1 runs it (make soak).
func TestReloadAtScale(t *testing.T) {
	if os.Getenv("VANE_SOAK") == "" {
		t.Skip("VANE_SOAK=1 runs the 10k reloads")
	}
	for _, tc := range []struct {
		name, from, to string
		limit          time.Duration
	}{
		{"10000 models -> 1", manyModels(10000), manyModels(1), time.Second},
		// Adding is dearer: every model's metric series are created.
		{"1 model -> 10000 models", manyModels(1), manyModels(10000), 3 * time.Second},
		{"1 model -> 1 model of 10000 versions", manyModels(1), manyVersions(10000), 3 * time.Second},
	} {
		cpu := reloadCost(t, tc.from, tc.to, 1)
		wall := reloadWall(t, tc.from, tc.to)
		t.Logf("%s: reload CPU %v, wall %v (serving, probes running)", tc.name, cpu, wall)
		require.Less(t, cpu, tc.limit)
	}
}
