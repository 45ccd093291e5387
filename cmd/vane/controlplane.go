package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/proxy"
	"github.com/vaneproxy/vane/xds"
)

// controlPlane runs `vane control-plane -config FILE`: the xDS server of a
// fleet.
func controlPlane(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("control-plane", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "vane-control-plane.yaml", "control plane file")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "vane: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	ctx, reload := signals(log)
	reg := proxy.NewRegistry()
	cp, err := xds.NewControlPlane(xds.ControlPlaneOptions{ConfigPath: *path, Reload: reload,
		Registerer: reg, Gatherer: reg, Logger: log})
	if err != nil {
		var problems configs.Errors
		if errors.As(err, &problems) {
			printConfigError(stderr, *path, err)
		} else {
			log.Error("vane control plane cannot start", "error", err)
		}
		return 1
	}
	if err := cp.Run(ctx); err != nil {
		log.Error("vane control plane stopped", "error", err)
		return 1
	}
	log.Info("control plane stopped; bye")
	return 0
}
