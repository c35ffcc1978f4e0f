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
NODE_OTEL_PACKAGES  := @opentelemetry/api@1.10.0 @opentelemetry/sdk-trace@3.1.1 @opentelemetry/exporter-trace-otlp-proto@0.301.2

# Stripped binary budgets in bytes (issue 5): 16 MiB amd64, 15 MiB arm64.
SIZE_BUDGETS := amd64:16777216 arm64:15728640

.PHONY: help build test lint tools fuzz layer demo bench size clean

help: ## List the targets
	@echo "Usage: make <target> [FUZZTIME=5s]"
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z_-]+:.*## / { printf "  %-7s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

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

tools: ## Install staticcheck, aws-lambda-rie and the OpenTelemetry JS packages of examples/otel-node (pinned) into ./.tools
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	GOBIN=$(TOOLS) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)
	@if command -v npm >/dev/null; then \
		npm install --prefix $(TOOLS) --no-audit --no-fund --no-save $(NODE_OTEL_PACKAGES); \
	else echo "npm not found: the Node.js example's test (go test ./receiver -run Node) will be skipped"; fi

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

clean: ## Remove dist/
	rm -rf $(DIST)
