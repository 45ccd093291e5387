package main

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sync"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/proxy"
	"github.com/vaneproxy/vane/xds"
)

// serveXDS runs serve when the file sets xds: the models come from the
// control plane through an xds.Client that applies each update through
// the proxy's atomic reload path. handled is false when the file does not
// load or does not set xds, and serve goes on as usual.
func serveXDS(ctx context.Context, path string, log *slog.Logger) (handled bool, err error) {
	cfg, raw, err := configs.Load(path)
	if err != nil || !cfg.XDS.Enabled() {
		return false, nil
	}
	start, startRaw := cfg, raw
	if cfg.StateDir != "" {
		last, lastRaw, err := xds.LoadLastGood(cfg.StateDir, raw)
		switch {
		case err == nil:
			log.Info("serving the last good xds config until the control plane answers", "state_dir", cfg.StateDir)
			start, startRaw = last, lastRaw
		case !errors.Is(err, fs.ErrNotExist):
			log.Warn("the last good xds config cannot be used; serving the file's models until the control plane answers", "error", err)
		}
	}
	reg := proxy.NewRegistry()
	srv, err := proxy.New(start, startRaw, proxy.Options{Registerer: reg, Gatherer: reg, Logger: log,
		Version: versionString(), ControlPlane: cfg.XDS.Server})
	if err != nil {
		return true, err
	}
	node := cfg.XDS.NodeID
	if node == "" {
		node, _ = os.Hostname()
	}
	opts := xds.ClientOptions{Servers: cfg.XDS.Servers(), NodeID: node, Cluster: cfg.XDS.Cluster, Base: raw,
		StateDir: cfg.StateDir, Registerer: reg, Logger: log,
		Apply: func(c *configs.Config, r []byte) error {
			_, err := srv.ApplyConfig(c, r)
			return err
		}}
	if cfg.XDS.TLS.Enabled() {
		if opts.Creds, err = xds.ClientCredentials(cfg.XDS.TLS); err != nil {
			return true, err
		}
	}
	client, err := xds.NewClient(opts)
	if err != nil {
		return true, err
	}
	srv.SetSource(func() any { return client.Status() })
	cctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = client.Run(cctx)
	}()
	err = srv.ListenAndServe(ctx, proxy.RunOptions{Logger: log})
	stop()
	wg.Wait()
	return true, err
}
