// Command vane is a sidecar reverse proxy for ML model backends.
//
//	vane serve -config vane.yaml      run the proxy
//	vane validate -config vane.yaml   check a config without serving
//	vane demo [-duration 1m]          toy backends, vane and traffic, in one process
//	vane weights -config vane.yaml    print or edit weights (set, promote, rollback, history)
//	vane version                      print the version
//
// This file is wiring only: flags, signals and exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/examples/demo"
	"github.com/vaneproxy/vane/monitor"
	"github.com/vaneproxy/vane/monitor/decode"
	"github.com/vaneproxy/vane/proxy"
)

// version is set at build time with -ldflags "-X main.version=..."; when
// empty the module version from the build info is used.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: vane <command> [flags]

commands:
  serve -config FILE      run the proxy (default config vane.yaml; -log-format text|json, -log-level)
  validate -config FILE   check a config; prints ok or one line per problem
  control-plane -config FILE  serve groups of models to a fleet over xDS (ADS)
  demo [-duration D]      toy model backends, vane and a traffic generator in one process
  reference build -protocol P [-features a,b,...] [-paths name=path,...] [-prediction-path p]
                          read request bodies (one per line) on stdin, write a reference profile on stdout
  weights -config FILE [set MODEL V=W... | promote MODEL V | rollback MODEL | history MODEL]
                          print or edit the models' weights in the file, in place
  version                 print the version
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "control-plane":
		return controlPlane(args[1:], stderr)
	case "demo":
		return runDemo(args[1:], stdout, stderr)
	case "reference":
		return reference(args[1:], os.Stdin, stdout, stderr)
	case "weights":
		return weights(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "vane", versionString())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "vane: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "vane.yaml", "config file to check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, _, err := configs.Load(*path); err != nil {
		printConfigError(stderr, *path, err)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

// printConfigError writes one line per problem.
func printConfigError(w io.Writer, path string, err error) {
	var problems configs.Errors
	if errors.As(err, &problems) {
		for _, p := range problems {
			fmt.Fprintf(w, "%s: %s\n", path, p.String())
		}
		return
	}
	fmt.Fprintf(w, "%s: %v\n", path, err)
}

// signals returns a context cancelled by the first SIGTERM or SIGINT; a
// second one exits at once. SIGHUP values go to the reload channel.
func signals(log *slog.Logger) (context.Context, <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	term := make(chan os.Signal, 2)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		s := <-term
		log.Info("signal received; draining (send again to exit at once)", "signal", s.String())
		cancel()
		s = <-term
		log.Warn("second signal; exiting without waiting for the drain", "signal", s.String())
		os.Exit(1)
	}()
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default: // a reload is already pending; it will read the newest file
			}
		}
	}()
	return ctx, reload
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "vane.yaml", "config file")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text (logfmt) or json (one object per line)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "vane: -log-level: %v\n", err)
		return 2
	}
	log, err := newLogger(stderr, *logFormat, lvl)
	if err != nil {
		fmt.Fprintf(stderr, "vane: -log-format: %v\n", err)
		return 2
	}
	ctx, reload := signals(log)
	handled, err := serveXDS(ctx, *path, log)
	if !handled {
		err = proxy.Run(ctx, proxy.RunOptions{ConfigPath: *path, Reload: reload, Logger: log, Version: versionString()})
	}
	if err != nil {
		var problems configs.Errors
		if errors.As(err, &problems) {
			printConfigError(stderr, *path, err)
		} else {
			log.Error("vane stopped", "error", err)
		}
		return 1
	}
	log.Info("drained; bye")
	return 0
}

// newLogger is the slog logger of -log-format: "text" (logfmt) or "json".
func newLogger(w io.Writer, format string, lvl slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("must be text or json, got %q", format)
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := fs.Duration("duration", 0, "stop after this long (0: run until interrupted)")
	listen := fs.String("listen", "127.0.0.1:8080", "proxy address (port 0 picks a free one)")
	admin := fs.String("admin", "127.0.0.1:9901", "admin address (port 0 picks a free one)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, _ := signals(log)
	if *d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *d)
		defer cancel()
	}
	err := demo.Run(ctx, demo.Options{Listen: *listen, Admin: *admin, Out: stdout, Logger: log, Tick: time.Second})
	if err != nil {
		fmt.Fprintf(stderr, "vane demo: %v\n", err)
		return 1
	}
	return 0
}

func reference(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "build" {
		fmt.Fprint(stderr, "usage: vane reference build -protocol P [-features a,b] [-paths name=path,...] [-prediction-path p] < data.jsonl > ref.json\n")
		return 2
	}
	fs := flag.NewFlagSet("reference build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	protocol := fs.String("protocol", "", "kserve-v1, kserve-v2, tfserving, mlflow, openai or raw")
	features := fs.String("features", "", "comma-separated names of the input columns (as monitor.features)")
	paths := fs.String("paths", "", "raw protocol: comma-separated name=dot.path pairs (as monitor.paths)")
	predPath := fs.String("prediction-path", "", "raw protocol: dot path of the prediction in a response")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	spec := decode.Spec{Protocol: configs.Protocol(*protocol), PredictionPath: *predPath}
	if spec.Protocol == configs.ProtocolGRPC {
		// The input is JSON lines; gRPC bodies are binary. The gRPC
		// decoders name features and predictions as the JSON forms do.
		fmt.Fprint(stderr, "vane reference build: -protocol grpc: gRPC bodies are binary; build the reference from the "+
			"same requests in JSON with -protocol kserve-v2 (ModelInfer) or -protocol tfserving (Predict): "+
			"the gRPC decoders name features and predictions the same way\n")
		return 2
	}
	if !spec.Protocol.Known() {
		fmt.Fprintf(stderr, "vane reference build: -protocol %q: must be one of kserve-v1, kserve-v2, tfserving, mlflow, openai, raw\n", *protocol)
		return 2
	}
	if *features != "" {
		spec.Features = strings.Split(*features, ",")
	}
	if *paths != "" {
		spec.Paths = map[string]string{}
		for _, kv := range strings.Split(*paths, ",") {
			name, path, ok := strings.Cut(kv, "=")
			if !ok || name == "" || path == "" {
				fmt.Fprintf(stderr, "vane reference build: -paths: %q is not name=path\n", kv)
				return 2
			}
			spec.Paths[name] = path
		}
	}
	rows, err := monitor.BuildProfile(stdin, &spec, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "vane reference build: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "vane reference build: %d rows profiled\n", rows)
	return 0
}
