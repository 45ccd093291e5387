// Command toymodel serves one version of the toy iris model (package toy) over
// every HTTP inference protocol vane understands, for demos and tests:
//
//	go run ./examples/toymodel -version v1 -listen 127.0.0.1:8501
//	go run ./examples/toymodel -version v2 -listen 127.0.0.1:8502 -delay 20ms -fail-rate 0.1
//	go run ./examples/toymodel -listen 127.0.0.1:8501 -grpc-listen 127.0.0.1:8511
//
// With -grpc-listen it also serves KServe V2's gRPC ModelInfer and the gRPC
// health service (h2c) on a second port.
//
// It is not a real model. SIGINT or SIGTERM shut it down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vaneproxy/vane/examples/toymodel/toy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "toymodel:", err)
		os.Exit(2)
	}
}

// run parses args, serves until ctx ends, then shuts down gracefully. It
// logs to logw and, when ready is non-nil, calls it with the bound address.
func run(ctx context.Context, args []string, logw io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("toymodel", flag.ContinueOnError)
	fs.SetOutput(logw)
	var opts toy.Options
	listen := fs.String("listen", "127.0.0.1:8501", "address to listen on")
	grpcListen := fs.String("grpc-listen", "", "address to serve gRPC (inference.GRPCInferenceService/ModelInfer, grpc.health.v1.Health) on; empty: none")
	fs.StringVar(&opts.Version, "version", "v1", `model version ("v1", or any other name for the shifted v2 thresholds with probabilities)`)
	fs.StringVar(&opts.Name, "name", "iris", "model name used in request paths")
	fs.DurationVar(&opts.Delay, "delay", 0, "extra latency per predict-like request")
	fs.Float64Var(&opts.FailRate, "fail-rate", 0, "fraction (0..1) of predict-like requests answered 503")
	fs.Uint64Var(&opts.Seed, "seed", 1, "seed of the fail-rate random source")
	fs.DurationVar(&opts.StreamInterval, "stream-interval", toy.DefaultStreamInterval, "pause between streamed chunks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if opts.FailRate < 0 || opts.FailRate > 1 {
		return fmt.Errorf("-fail-rate %g: want a fraction between 0 and 1", opts.FailRate)
	}
	if opts.Delay < 0 {
		return fmt.Errorf("-delay %v: must not be negative", opts.Delay)
	}
	model := toy.New(opts)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: model, ReadHeaderTimeout: 10 * time.Second}
	logger := log.New(logw, "", log.LstdFlags)
	logger.Printf("toymodel: serving model %q version %q on http://%s (kserve-v1/tfserving, kserve-v2, mlflow, openai; delay %v, fail-rate %g)",
		model.Name(), model.Version(), ln.Addr(), opts.Delay, opts.FailRate)
	if *grpcListen != "" {
		gln, err := net.Listen("tcp", *grpcListen)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("-grpc-listen: %w", err)
		}
		gs := model.NewGRPCServer()
		go func() { _ = gs.Serve(gln) }() // returns when stopped
		defer gs.GracefulStop()
		logger.Printf("toymodel: serving gRPC ModelInfer and health on h2c://%s", gln.Addr())
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Printf("toymodel: stopped after %d predict-like requests", model.Requests())
	return nil
}
