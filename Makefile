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
# Packages holding tests with the e2e build tag: real processes, real
# sockets and wall-clock deadlines (the emulator, AWS's emulator, the
# floor, the listener's quiet periods). Their untagged tests run again
# with them.
E2E_PKGS    ?= ./emulator ./emulator/e2e ./emulator/e2e/backends ./cmd/slipstream-emulator ./cmd/slipstream-floor ./telemetry
E2E_TIMEOUT ?= 30m

# grpcnotrace keeps golang.org/x/net/trace (and with it html/template) out of
# the binary: about 3 MiB less on each architecture. The agent does not use
# gRPC tracing.
BUILD_TAGS := grpcnotrace
# telemetry.distro.version of the agent.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)

STATICCHECK_VERSION := v0.8.2
RIE_VERSION         := v0.0.0-20261030222936-bef5c4ba774d
NODE_OTEL_PACKAGES  := @opentelemetry/api@1.10.0 @opentelemetry/sdk-trace@3.1.1 @opentelemetry/exporter-trace-otlp-proto@0.301.2

# Real backends of `make e2e` (see the e2e section below).
# Pinned in the tools modules (tools/go.mod: Jaeger and the logs collector,
# which share the collector's modules; tools/prometheus/go.mod: Prometheus
# and promtool), never in the agent's go.mod. Built stripped, without VCS
# stamping, and Prometheus without its service discovery plugins
# (remove_all_sd).
BACKENDS := $(TOOLS)/jaeger $(TOOLS)/otelcol-logs $(TOOLS)/prometheus $(TOOLS)/promtool
TOOLS_BUILD := $(GO) build -trimpath -buildvcs=false -ldflags "-s -w"

# Stripped binary budgets in bytes: 16 MiB amd64, 15 MiB arm64.
SIZE_BUDGETS := amd64:16777216 arm64:15728640

# make publish-layer: where and what to publish.
REGION     ?=
ARCH       ?= arm64
LAYER_NAME ?= slipstream-$(ARCH)
PUBLIC     ?= false
AWS        ?= aws
AWS_FLAGS  ?=
ZIP        ?= $(DIST)/slipstream-$(ARCH).zip

# Pinned versions of the CDK example's packages are in examples/cdk/package.json.
CDK_DIR := $(TOOLS)/cdk

.PHONY: help build test e2e lint tools fuzz layer release publish-layer examples rules demo bench size clean

help: ## List the targets
	@echo "Usage: make <target> [FUZZTIME=5s]"
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "  %-13s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## Build the agent for linux/amd64 and linux/arm64 into dist/<arch>/slipstream
	@set -e; for arch in $(ARCHES); do \
		echo "build $(DIST)/$$arch/slipstream (linux/$$arch)"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -tags $(BUILD_TAGS) -ldflags "-s -w -X main.version=$(VERSION)" \
			-o $(DIST)/$$arch/slipstream $(PKG); \
	done

test: ## Run the fast, deterministic tests with the race detector (no e2e tag); list the tests that skipped, and why
	@mkdir -p $(TOOLS)
	@$(GO) build -o $(TOOLS)/slipstream-testsummary ./cmd/slipstream-testsummary
	set -o pipefail; $(GO) test -race -json ./... | $(TOOLS)/slipstream-testsummary

e2e: ## Run the real-time end-to-end tests (build tag e2e: emulator, AWS's emulator, Jaeger, Prometheus, a logs collector) with the race detector
	$(GO) test -race -tags e2e -timeout $(E2E_TIMEOUT) $(E2E_PKGS)

lint: $(TOOLS)/staticcheck ## Run go vet and staticcheck (e2e files included)
	$(GO) vet -tags e2e ./...
	$(TOOLS)/staticcheck -tags e2e ./...

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

tools: $(BACKENDS) ## Install staticcheck, aws-lambda-rie, the test backends (Jaeger, Prometheus and promtool, a logs collector), the CDK example's and the Node.js example's packages (pinned) into ./.tools; the AWS CLI if missing
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	GOBIN=$(TOOLS) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)
	@if command -v $(AWS) >/dev/null 2>&1; then \
		echo "tools: AWS CLI found: $$($(AWS) --version 2>&1)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "tools: installing the AWS CLI (Debian package awscli)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq awscli >/dev/null; \
	else \
		echo "tools: no AWS CLI and not root with apt-get: the make publish-layer test will skip"; \
	fi
	@if command -v npm >/dev/null 2>&1; then \
		mkdir -p $(CDK_DIR) && cp examples/cdk/package.json examples/cdk/package-lock.json $(CDK_DIR)/ && \
		npm ci --prefix $(CDK_DIR) --no-audit --no-fund --loglevel=error && \
		ln -sfn $(CDK_DIR)/node_modules examples/cdk/node_modules && \
		echo "tools: CDK example packages in $(CDK_DIR)/node_modules"; \
	else \
		echo "tools: no npm: make examples skips the CDK synth"; \
	fi
	@if command -v npm >/dev/null 2>&1; then \
		npm install --prefix $(TOOLS) --no-audit --no-fund --no-save --loglevel=error $(NODE_OTEL_PACKAGES) && \
		echo "tools: OpenTelemetry JS packages of examples/otel-node in $(TOOLS)/node_modules"; \
	else \
		echo "tools: no npm: go test ./receiver -run Node skips the Node.js example"; \
	fi

fuzz: ## Run every fuzz target for FUZZTIME each (default 5s; FUZZPKGS narrows the packages)
	@set -e; pkgs=$$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' $(FUZZPKGS)); \
	for pkg in $$pkgs; do \
		list=$$($(GO) test -list 'Fuzz.*' $$pkg); \
		for fn in $$(grep '^Fuzz' <<< "$$list" || true); do \
			echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

layer: build ## Zip the builds into dist/slipstream-x86_64.zip and dist/slipstream-arm64.zip (extensions/slipstream)
	$(GO) run ./layer -dist $(DIST) -arch "$(ARCHES)"

release: build ## The layers, versioned zips, SPDX bills of materials and SHA256SUMS in dist/release (VERSION=v1.2.3)
	SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || date +%s)} \
		$(GO) run ./layer -dist $(DIST) -arch "$(ARCHES)" -release "$(VERSION)"
	cd $(DIST)/release && sha256sum -c SHA256SUMS

publish-layer: ## Publish $(ZIP) as a layer version: REGION=eu-west-1 [ARCH=arm64|x86_64] [PUBLIC=true] [LAYER_NAME=...] [AWS_FLAGS=...]
	@if [ -z "$(REGION)" ]; then echo "publish-layer: set REGION, e.g. make publish-layer REGION=eu-west-1 ARCH=arm64" >&2; exit 2; fi
	@case "$(ARCH)" in x86_64|arm64) ;; *) echo "publish-layer: ARCH=$(ARCH): want x86_64 or arm64" >&2; exit 2;; esac
	@if [ ! -f "$(ZIP)" ]; then echo "publish-layer: $(ZIP) not found: run make layer first" >&2; exit 2; fi
	@set -eo pipefail; \
	arn=$$($(AWS) $(AWS_FLAGS) lambda publish-layer-version --region "$(REGION)" \
		--layer-name "$(LAYER_NAME)" --description "Slipstream $(VERSION) ($(ARCH))" \
		--license-info Apache-2.0 --compatible-architectures "$(ARCH)" \
		--zip-file "fileb://$(ZIP)" --query LayerVersionArn --output text); \
	echo "published $$arn"; \
	if [ "$(PUBLIC)" = true ]; then \
		$(AWS) $(AWS_FLAGS) lambda add-layer-version-permission --region "$(REGION)" \
			--layer-name "$(LAYER_NAME)" --version-number "$${arn##*:}" \
			--statement-id public --action lambda:GetLayerVersion --principal '*' --output text >/dev/null; \
		echo "granted lambda:GetLayerVersion on $$arn to every account"; \
	fi

examples: ## Check the deployment examples offline: Terraform, Dockerfile, SAM and the CDK app's synth (CDK after make tools)
	@set -e; rm -rf $(CDK_DIR)/cdk.out; if [ -x examples/cdk/node_modules/.bin/cdk ]; then \
		cd examples/cdk && rm -rf build && node_modules/.bin/tsc -p . && \
		CDK_DISABLE_CLI_TELEMETRY=true node_modules/.bin/cdk synth --quiet --no-notices --no-version-reporting \
			--output $(CDK_DIR)/cdk.out -c layerZip=$(CURDIR)/examples/validate/testdata/layer.zip; \
		echo "examples: CDK app synthesized into $(CDK_DIR)/cdk.out"; \
	else \
		echo "examples: SKIP CDK synth: examples/cdk/node_modules is not installed (make tools, which needs npm)"; \
	fi
	cd examples/validate && SLIPSTREAM_CDK_OUT=$$([ -d $(CDK_DIR)/cdk.out ] && echo $(CDK_DIR)/cdk.out) $(GO) test -v ./...

rules: ## Check the Prometheus rules of examples/alerts and run their tests with promtool (from make tools; skipped without it)
	@if [ ! -x $(TOOLS)/promtool ]; then \
		echo "rules: SKIP: $(TOOLS)/promtool not found (make tools builds it)"; \
	else \
		cd examples/alerts && $(TOOLS)/promtool check rules slipstream.rules.yml && \
		$(TOOLS)/promtool test rules slipstream.rules.test.yml; \
	fi

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

$(TOOLS)/promtool: tools/prometheus/go.mod tools/prometheus/go.sum
	cd tools/prometheus && $(TOOLS_BUILD) -tags remove_all_sd -o $@ github.com/prometheus/prometheus/cmd/promtool

# ---------------------------------------------------------------------------

clean: ## Remove dist/
	rm -rf $(DIST)
