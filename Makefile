# vane — build, test, lint, demo, bench.
GO       ?= go
PKGS     ?= ./...
BIN      ?= bin/vane
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

FUZZTIME ?= 30s

.PHONY: all build test lint demo bench bench-peers bench-grpc profile instructions soak fuzz fmt tidy clean alerts-e2e fleet drift-eval

all: lint test build

## build: compile bin/vane (and bin/toymodel, the toy model of the quickstart)
build:
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/vane
	$(GO) build -trimpath -o bin/toymodel ./examples/toymodel

## test: vet and run every test with the race detector (what CI runs)
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

## lint: gofmt check and go vet
lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## demo: the embedded default — toy backends, vane, traffic (Ctrl-C to stop)
demo:
	$(GO) run ./cmd/vane demo

## bench: Go benchmarks of the hot pieces, with allocations
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 $(PKGS)

## bench-peers: vane against nginx, HAProxy, Caddy and Go peers on HTTP/1.1, then the gRPC peer run (bench-grpc), one pinned core each (installs Debian packages)
bench-peers:
	bash bench/peers.sh
	bash bench/grpc.sh

## bench-grpc: unary gRPC calls through vane, nginx grpc_pass, HAProxy h2, a bare x/net/http2 forwarder and the bare relay engine, one pinned core each (installs Debian packages)
bench-grpc:
	bash bench/grpc.sh

## profile: a CPU profile of vane (every feature on) under the peer benchmark's load
profile:
	bash bench/profile.sh

## instructions: user-space instructions per request under callgrind (BASE=<rev> to compare)
instructions:
	bash bench/instructions.sh

## fleet: a weight change reaching N sidecars over xDS: p50/p99/max and the control plane's heap, RSS, goroutines (N=500 and N=2000)
fleet: build
	$(GO) run ./bench/fleet -vane $(BIN) -n 500
	$(GO) run ./bench/fleet -vane $(BIN) -n 2000
	$(GO) run ./bench/fleet -vane $(BIN) -n 500 -models 4

## soak: the long fault tests (VANE_SOAK=1), then ten million requests at 256 connections printing RSS (TOTAL=... to change)
soak:
	VANE_SOAK=1 $(GO) test -race -count=1 -timeout 30m -run 'Reload|ConfigMap|Overload|SlowClients|SlowMonitor|Huge|CutH2C|ClientFaults|Refused|NonReading|H2CStream' ./proxy
	bash bench/soak.sh

## alerts-e2e: a real Prometheus with deploy/prometheus's rules fires endpoint-down and error-ratio alerts (~3 min; needs prometheus)
alerts-e2e:
	bash deploy/prometheus/alerts-e2e.sh

## drift-eval: the drift detection harness through the real monitor (false alerts, detection within 1/2/5/10 windows; RUNS=400 NULL=20000)
drift-eval:
	VANE_DRIFT_EVAL=1 VANE_DRIFT_EVAL_RUNS=$(or $(RUNS),400) VANE_DRIFT_EVAL_NULL=$(or $(NULL),20000) \
	  $(GO) test -count=1 -timeout 60m -run '^TestDriftEval$$' -v ./monitor/ | grep -v '^=== '

## fuzz: every fuzz target for FUZZTIME each (seed corpora live in testdata/fuzz)
fuzz:
	@set -e; for pkg in $$(go list ./...); do \
	  dir=$$(go list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

fmt:
	gofmt -w .

tidy:
	$(GO) mod tidy

clean:
	rm -rf bin
