# plcwatch build targets. Every target says what it does; `make help` lists them.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/plcwatch/plcwatch/app.Version=$(VERSION)
BIN      := bin/plcwatch
# Node peers used by interoperability tests (independent protocol implementations).
NODE_DIRS := $(patsubst %/package-lock.json,%,$(shell git ls-files '*/testdata/node/package-lock.json' 2>/dev/null))
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 10s
TEST_TIMEOUT ?= 20m
# make reliability: processes killed during checks, and seconds per fuzz target.
KILLS ?= 120
RELIABILITY_FUZZTIME ?= 2s

.PHONY: help build test demo bench fuzz lint tidy check node-deps clean reliability

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## static binary in bin/plcwatch (CGO_ENABLED=0, version stamped)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/plcwatch

node-deps: ## install the pinned Node test peers (npm ci) where missing or stale
	@for d in $(NODE_DIRS); do \
	  if [ ! -f $$d/node_modules/.package-lock.json ] || [ $$d/package-lock.json -nt $$d/node_modules/.package-lock.json ]; then \
	    echo "npm ci in $$d"; (cd $$d && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
	  fi; \
	done

test: node-deps ## go vet, then every test with the race detector
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

demo: build ## run the demo against the built-in simulators
	$(BIN) demo --example plcwatch.example.yaml --dir demo-run

bench: build ## Go benchmarks side by side as ratios, then docs/BENCHMARKS.md (figures against outside anchors)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./... | tee bench.out
	$(GO) run ./internal/benchratio < bench.out
	$(GO) run ./internal/benchdoc -bin $(BIN) -gobench bench.out -out docs/BENCHMARKS.md

fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

lint: ## go vet and staticcheck
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

tidy: ## fail when go.mod or go.sum drift from the code
	$(GO) mod tidy -diff

reliability: ## regenerate docs/RELIABILITY.md: kill -9, tampering, fuzz, hostile-reply and secret campaigns
	$(GO) run ./internal/reliability -out docs/RELIABILITY.md -kills $(KILLS) -fuzztime $(RELIABILITY_FUZZTIME)

check: lint tidy test ## everything CI cares about

clean: ## remove build output and the demo's data
	rm -rf bin demo-run bench.out
