// Package demo runs vane's embedded default: toy model backends, the proxy
// in front of them with the shipped demo config, and a traffic generator,
// all in one process on loopback. `vane demo` calls Run.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/examples/toymodel/toy"
	"github.com/vaneproxy/vane/proxy"
)

// Options configure Run.
type Options struct {
	// Listen and Admin are the proxy's addresses; port 0 picks a free one.
	Listen, Admin string
	// Out receives the banner and the live summary.
	Out io.Writer
	// Logger receives vane's logs.
	Logger *slog.Logger
	// Tick is the summary interval; default 1s.
	Tick time.Duration
	// Rate is the generator's target requests per second; default 300.
	Rate int
	// DriftAfter is when the generator starts shifting petal_length by
	// DriftBy (default 20s and +1.5); negative means never.
	DriftAfter time.Duration
	DriftBy    float64
	// Ready, when set, is called with the proxy and admin addresses.
	Ready func(proxyAddr, adminAddr string)
}

// demoBackends are the toy backends of the demo config, in the order of
// the placeholder addresses in configs/demo.yaml. The shadow v3 is v1's
// stump answering the next class on every tenth row.
var demoBackends = []struct {
	version, placeholder string
	toy                  toy.Options
}{
	{"v1", "127.0.0.1:18501", toy.Options{Name: "iris", Version: "v1"}},
	{"v2", "127.0.0.1:18502", toy.Options{Name: "iris", Version: "v2"}},
	{"v2", "127.0.0.1:18503", toy.Options{Name: "iris", Version: "v2"}},
	{"v3", "127.0.0.1:18504", toy.Options{Name: "iris", Version: "v1", DisagreeEvery: 10}},
}

// Run starts everything and returns when ctx is done and vane has drained.
func Run(ctx context.Context, opts Options) error {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	if opts.Rate <= 0 {
		opts.Rate = 300
	}
	if opts.DriftAfter == 0 {
		opts.DriftAfter = 20 * time.Second
	}
	if opts.DriftBy == 0 {
		opts.DriftBy = 1.5
	}
	raw, err := configs.Example("demo.yaml")
	if err != nil {
		return err
	}
	text := string(raw)

	var servers []*http.Server
	defer func() {
		for _, s := range servers {
			_ = s.Close()
		}
	}()
	for _, b := range demoBackends {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("starting toy backend %s: %w", b.version, err)
		}
		srv := &http.Server{Handler: toy.New(b.toy), ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(ln) }()
		text = strings.Replace(text, `"http://`+b.placeholder+`"`, `"http://`+ln.Addr().String()+`"`, 1)
	}
	text = strings.Replace(text, `listen: "127.0.0.1:8080"`, fmt.Sprintf("listen: %q", opts.Listen), 1)
	text = strings.Replace(text, `listen: "127.0.0.1:9901"`, fmt.Sprintf("listen: %q", opts.Admin), 1)
	cfg, err := configs.Parse([]byte(text))
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	// The config is served from a file in a temporary directory, so that
	// `vane weights -config` and the weights endpoints can edit it and
	// rollouts can write their steps, as with `vane serve`.
	dir, err := os.MkdirTemp("", "vane-demo-")
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "vane.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		return fmt.Errorf("demo config: %w", err)
	}

	reg := proxy.NewRegistry()
	srv, err := proxy.New(cfg, []byte(text), proxy.Options{ConfigPath: cfgPath, Registerer: reg, Gatherer: reg, Logger: opts.Logger})
	if err != nil {
		return err
	}
	ready := make(chan [2]string, 1)
	serveCtx, stopServe := context.WithCancel(context.Background())
	defer stopServe()
	serveErr := make(chan error, 1)
	go func() {
		serveErr <- srv.ListenAndServe(serveCtx, proxy.RunOptions{ConfigPath: cfgPath, Ready: func(d, a net.Addr) {
			ready <- [2]string{d.String(), a.String()}
		}})
	}()
	var addrs [2]string
	select {
	case addrs = <-ready:
	case err := <-serveErr:
		return err
	}
	// Traffic starts once health checks have passed for every endpoint, as
	// an operator would wait for /readyz before sending users.
	if err := waitHealthy(ctx, "http://"+addrs[1]); err != nil {
		return err
	}
	if opts.Ready != nil {
		opts.Ready(addrs[0], addrs[1])
	}
	printBanner(opts.Out, addrs[0], addrs[1], cfgPath)

	gen := newGenerator("http://"+addrs[0], opts.Rate)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); gen.run(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); gen.feedback(ctx, "http://"+addrs[1]) }()
	if opts.DriftAfter > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-ctx.Done():
			case <-time.After(opts.DriftAfter):
				gen.drift(opts.DriftBy)
				fmt.Fprintf(opts.Out, "--- input drift starts now: petal_length %+.1f (the other features stay as they were)\n", opts.DriftBy)
			}
		}()
	}
	summarize(ctx, opts.Out, gen, newAlertWatch("http://"+addrs[1], cfg.Models[0].Monitor.Reference.Warmup),
		newCompareWatch("http://"+addrs[1], "iris"), opts.Tick)
	wg.Wait()
	stopServe()
	if err := <-serveErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Fprintln(opts.Out, gen.line(0))
	return nil
}

func printBanner(w io.Writer, data, admin, cfgPath string) {
	fmt.Fprintf(w, `vane demo: toy iris model, v1 (80%%) and v2 (20%%, two endpoints), sticky on x-user-id;
v3 shadows them (gets copies, answers no client, disagrees with v1 on every tenth row);
the generator posts each request's true species to /feedback a second later

  page     http://%[2]s/   (status page: split, health, drift plots; open it in a browser)
  proxy    http://%[1]s/v1/models/iris:predict
  admin    http://%[2]s
  metrics  http://%[2]s/metrics
  status   http://%[2]s/status

  drift    http://%[2]s/drift
  compare  http://%[2]s/compare?model=iris
  config   %[3]s (removed on exit)

  try:  curl -s -H 'X-Vane-Version: v2' -d '{"instances":[[6.8,2.8,4.8,1.4]]}' http://%[1]s/v1/models/iris:predict
        vane weights -config %[3]s set iris v1=50 v2=50

`, data, admin, cfgPath)
}

func summarize(ctx context.Context, w io.Writer, gen *generator, alerts *alertWatch, cmp *compareWatch, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, l := range alerts.changes(ctx) {
				fmt.Fprintln(w, l)
			}
			fmt.Fprintln(w, gen.line(tick)+alerts.summary())
			if n%compareEvery == 0 {
				if l := cmp.line(ctx); l != "" {
					fmt.Fprintln(w, l)
				}
			}
		}
	}
}

// waitHealthy polls the admin /status until every endpoint is routable.
func waitHealthy(ctx context.Context, admin string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ok, err := allRoutable(ctx, client, admin); err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the toy backends never passed their health checks")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func allRoutable(ctx context.Context, client *http.Client, admin string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, admin+"/status", nil)
	if err != nil {
		return false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var st proxy.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return false, err
	}
	for _, m := range st.Models {
		for _, v := range m.Versions {
			for _, e := range v.Endpoints {
				if !e.Routable {
					return false, nil
				}
			}
		}
	}
	return true, nil
}
