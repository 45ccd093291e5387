// Command fleet measures how fast a weight change reaches a fleet: it
// starts `vane control-plane` (the binary given by -vane, a process of its
// own so that its memory is its own), connects N sidecar xDS clients (the
// real xds.Client, in this process: each translates, composes and
// validates the config exactly as a sidecar does; only the final swap into
// a proxy is replaced by recording the weight), then rewrites one weight
// in the control plane's file -changes times and measures, for each
// change, the time from the file write until every client has applied the
// new config and sent its ACK. It prints p50, p99 and max over every
// (client, change) pair, the slowest client per change, and the control
// plane's heap, RSS and goroutines (from its /metrics).
//
//	go run ./bench/fleet -vane bin/vane -n 500
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/xds"
)

func main() {
	vane := flag.String("vane", "bin/vane", "the vane binary")
	n := flag.Int("n", 500, "sidecars")
	changes := flag.Int("changes", 20, "weight changes")
	models := flag.Int("models", 1, "models in the group (two versions each); a sidecar usually serves one")
	cpuprofile := flag.String("cpuprofile", "", "write this process's CPU profile (the sidecars') here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*vane, *n, *changes, *models); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func cpFile(listen, admin string, models, w int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\nadmin: {listen: %q}\ngroups:\n  - name: prod\n    models:\n", listen, admin)
	for i := range models {
		w1 := 50
		if i == 0 {
			w1 = w
		}
		fmt.Fprintf(&b, `      - name: model-%d
        match: {path_prefix: /m%d}
        protocol: kserve-v1
        versions:
          - {name: v1, weight: %d, endpoints: ["http://10.0.0.1:8501", "http://10.0.0.2:8501"]}
          - {name: v2, weight: %d, endpoints: ["http://10.0.0.3:8501"]}
`, i, i, w1, 100-w1)
	}
	return b.String()
}

func write(path, content string) error {
	if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// sidecar records when it applied and ACKed each weight of model-0/v1.
type sidecar struct {
	// applied is the weight of the config last applied; acked the
	// weight whose ACK was last sent.
	applied atomic.Int64
	acked   chan int64
}

func run(vane string, n, changes, models int) error {
	dir, err := os.MkdirTemp("", "vane-fleet")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	listen, err := freeAddr()
	if err != nil {
		return err
	}
	admin, err := freeAddr()
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "cp.yaml")
	if err := write(path, cpFile(listen, admin, models, 10)); err != nil {
		return err
	}
	cmd := exec.Command(vane, "control-plane", "-config", path, "-log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	if err := waitReady("http://" + admin + "/readyz"); err != nil {
		return err
	}
	base := []byte("listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nxds: {server: " + listen + ", cluster: prod}\n")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	cars := make([]*sidecar, n)
	start := time.Now()
	for i := range cars {
		s := &sidecar{acked: make(chan int64, changes+2)}
		cars[i] = s
		c, err := xds.NewClient(xds.ClientOptions{
			Servers: []string{listen}, NodeID: "sidecar-" + strconv.Itoa(i), Cluster: "prod", Base: base,
			Registerer: prometheus.NewRegistry(), Logger: log,
			Apply: func(cfg *configs.Config, _ []byte) error {
				s.applied.Store(int64(cfg.Models[0].Versions[0].Weight))
				return nil
			},
			OnResult: func(_, _ string, err error) {
				if err == nil {
					s.acked <- s.applied.Load()
				}
			},
		})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Run(ctx)
		}()
	}
	for _, s := range cars {
		if err := waitAck(s, 10, 60*time.Second); err != nil {
			return fmt.Errorf("initial sync: %w", err)
		}
	}
	fmt.Printf("fleet: %d sidecars, %d models, initial sync %s\n", n, models, time.Since(start).Round(time.Millisecond))
	time.Sleep(time.Second) // let the initial burst settle

	var all []time.Duration
	var slowest []time.Duration
	for c := 1; c <= changes; c++ {
		w := int64(10 + c)
		t0 := time.Now()
		if err := write(path, cpFile(listen, admin, models, int(w))); err != nil {
			return err
		}
		var lat []time.Duration
		var mu sync.Mutex
		var cw sync.WaitGroup
		errs := make(chan error, n)
		for _, s := range cars {
			cw.Add(1)
			go func() {
				defer cw.Done()
				if err := waitAck(s, w, 30*time.Second); err != nil {
					errs <- err
					return
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}()
		}
		cw.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return fmt.Errorf("change %d: %w", c, err)
		}
		slices.Sort(lat)
		slowest = append(slowest, lat[len(lat)-1])
		all = append(all, lat...)
		time.Sleep(200 * time.Millisecond)
	}
	slices.Sort(all)
	q := func(p float64) time.Duration { return all[int(p*float64(len(all)-1))].Round(100 * time.Microsecond) }
	fmt.Printf("file write -> applied and ACKed by each sidecar, %d changes x %d sidecars:\n", changes, n)
	fmt.Printf("  p50 %s  p99 %s  max %s\n", q(0.5), q(0.99), all[len(all)-1].Round(100*time.Microsecond))
	slices.Sort(slowest)
	fmt.Printf("  last sidecar per change: median %s  max %s\n", slowest[len(slowest)/2].Round(100*time.Microsecond), slowest[len(slowest)-1].Round(100*time.Microsecond))
	m, err := scrape("http://" + admin + "/metrics")
	if err != nil {
		return err
	}
	fmt.Printf("control plane: heap %.1f MiB allocated (%.1f MiB in use), RSS %.1f MiB, goroutines %.0f, responses rds %.0f cds %.0f eds %.0f\n",
		m["go_memstats_heap_alloc_bytes"]/(1<<20), m["go_memstats_heap_inuse_bytes"]/(1<<20),
		m["process_resident_memory_bytes"]/(1<<20), m["go_goroutines"],
		m[`vane_controlplane_responses_total{type="rds"}`], m[`vane_controlplane_responses_total{type="cds"}`],
		m[`vane_controlplane_responses_total{type="eds"}`])
	return nil
}

// waitAck waits until the sidecar has ACKed weight w.
func waitAck(s *sidecar, w int64, limit time.Duration) error {
	deadline := time.After(limit)
	for {
		select {
		case got := <-s.acked:
			if got == w {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("weight %d not acked within %s (applied %d)", w, limit, s.applied.Load())
		}
	}
}

func waitReady(url string) error {
	for range 200 {
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the control plane never became ready")
}

// scrape reads the unlabelled-or-labelled samples of a text exposition.
func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}
