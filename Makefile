# vane — build, test, lint, demo, bench.
GO       ?= go
PKGS     ?= ./...
BIN      ?= bin/vane
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build test lint demo bench fmt tidy clean

all: lint test build

## build: compile bin/vane
build:
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/vane

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

fmt:
	gofmt -w .

tidy:
	$(GO) mod tidy

clean:
	rm -rf bin
