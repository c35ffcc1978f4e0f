# Slipstream build. `make` (or `make help`) lists the targets; each target's
# `##` comment is its help line.

.DEFAULT_GOAL := help
SHELL := /bin/bash

GO       ?= go
TOOLS    := $(CURDIR)/.tools
DIST     := dist
PKG      ?= ./cmd/slipstream
ARCHES   := amd64 arm64
FUZZTIME ?= 5s
FUZZPKGS ?= ./...

# grpcnotrace keeps golang.org/x/net/trace (and with it html/template) out of
# the binary: about 3 MiB less on each architecture. The agent does not use
# gRPC tracing.
BUILD_TAGS := grpcnotrace
# telemetry.distro.version of the agent.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)

STATICCHECK_VERSION := v0.8.2
RIE_VERSION         := v0.0.0-20261030222936-bef5c4ba774d

# Real backends of `make e2e` (see the e2e section below).
# Pinned in the tools modules (tools/go.mod: Jaeger and the logs collector,
# which share the collector's modules; tools/prometheus/go.mod: Prometheus),
# never in the agent's go.mod. Built stripped, without VCS stamping, and
# Prometheus without its service discovery plugins (remove_all_sd).
BACKENDS := $(TOOLS)/jaeger $(TOOLS)/otelcol-logs $(TOOLS)/prometheus
TOOLS_BUILD := $(GO) build -trimpath -buildvcs=false -ldflags "-s -w"

# Stripped binary budgets in bytes (issue 5): 16 MiB amd64, 15 MiB arm64.
SIZE_BUDGETS := amd64:16777216 arm64:15728640

.PHONY: help build test lint tools fuzz layer demo bench size clean e2e

help: ## List the targets
	@echo "Usage: make <target> [FUZZTIME=5s]"
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "  %-7s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## Build the agent for linux/amd64 and linux/arm64 into dist/<arch>/slipstream
	@set -e; for arch in $(ARCHES); do \
		echo "build $(DIST)/$$arch/slipstream (linux/$$arch)"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -tags $(BUILD_TAGS) -ldflags "-s -w -X main.version=$(VERSION)" \
			-o $(DIST)/$$arch/slipstream $(PKG); \
	done

test: ## Run every test with the race detector
	$(GO) test -race ./...

lint: $(TOOLS)/staticcheck ## Run go vet and staticcheck
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

tools: $(BACKENDS) ## Install staticcheck, aws-lambda-rie and the test backends (pinned) into ./.tools
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	GOBIN=$(TOOLS) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

fuzz: ## Run every fuzz target for FUZZTIME each (default 5s; FUZZPKGS narrows the packages)
	@set -e; pkgs=$$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' $(FUZZPKGS)); \
	for pkg in $$pkgs; do \
		list=$$($(GO) test -list 'Fuzz.*' $$pkg); \
		for fn in $$(grep '^Fuzz' <<< "$$list" || true); do \
			echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

layer: build ## Zip the builds into dist/slipstream-<arch>.zip (extensions/slipstream)
	$(GO) run ./layer -dist $(DIST) -arch "$(ARCHES)"

demo: ## Run the demo: an example function with Slipstream in a local Lambda emulator
	$(GO) run ./cmd/slipstream-demo

bench: ## Run the Go benchmarks and the whole-process benchmark (numbers only; BENCH_FLAGS=-quick)
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./cmd/slipstream-bench $(BENCH_FLAGS)

size: build ## Fail when a stripped binary exceeds its budget (16 MiB amd64, 15 MiB arm64)
	@fail=0; for budget in $(SIZE_BUDGETS); do \
		arch=$${budget%%:*}; limit=$${budget#*:}; \
		size=$$(wc -c < $(DIST)/$$arch/slipstream); \
		verdict=ok; if [ "$$size" -gt "$$limit" ]; then verdict="OVER BUDGET"; fail=1; fi; \
		printf '%-24s %10d bytes (%5.2f MiB), budget %10d bytes (%5.2f MiB): %s\n' \
			$(DIST)/$$arch/slipstream $$size $$(awk "BEGIN{print $$size/1048576}") \
			$$limit $$(awk "BEGIN{print $$limit/1048576}") "$$verdict"; \
	done; exit $$fail

# ---- Real backends for `make e2e` ----------------------------------------

$(TOOLS)/jaeger: tools/go.mod tools/go.sum
	cd tools && $(TOOLS_BUILD) -o $@ github.com/jaegertracing/jaeger/cmd/jaeger

$(TOOLS)/otelcol-logs: tools/go.mod tools/go.sum tools/otelcol-logs/main.go
	cd tools && $(TOOLS_BUILD) -o $@ ./otelcol-logs

$(TOOLS)/prometheus: tools/prometheus/go.mod tools/prometheus/go.sum
	cd tools/prometheus && $(TOOLS_BUILD) -tags remove_all_sd -o $@ github.com/prometheus/prometheus/cmd/prometheus

e2e: ## Run the end-to-end tests against Jaeger, Prometheus and an OpenTelemetry Collector (from `make tools`)
	$(GO) vet -tags e2e ./emulator/e2e/backends/
	SLIPSTREAM_TOOLS=$(TOOLS) $(GO) test -tags e2e -count=1 -v -timeout 20m ./emulator/e2e/backends/
# ---------------------------------------------------------------------------

clean: ## Remove dist/
	rm -rf $(DIST)
