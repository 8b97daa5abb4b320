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

# Install layout (make install PREFIX=/usr DESTDIR=/tmp/stage).
PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR   := $(PREFIX)/bin
MANDIR   := $(PREFIX)/share/man/man1
DOCDIR   := $(PREFIX)/share/doc/plcwatch
UNITDIR  ?= $(PREFIX)/lib/systemd/system
NFPM     := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
# A tag v1.2.3 gives 1.2.3; an untagged commit 0.0.0~g4ebb432 (sorts before any release).
DEB_VERSION ?= $(shell echo '$(VERSION)' | sed -e 's/^v\([0-9]\)/\1/;t' -e 's/^/0.0.0~g/' | tr -- '-' '.')

.PHONY: help build test demo bench fuzz lint tidy check node-deps clean reliability man install deb deb-test

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

man: ## manual pages generated from the cobra commands into bin/man
	rm -rf bin/man
	$(GO) run ./internal/mangen -out bin/man -version $(VERSION)

install: build man ## install binary, man pages, example config, systemd unit (PREFIX, DESTDIR)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/plcwatch
	install -m 0644 bin/man/*.1 $(DESTDIR)$(MANDIR)/
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 0644 plcwatch.example.yaml $(DESTDIR)$(DOCDIR)/plcwatch.example.yaml
	sed -e 's|/usr/local/bin/plcwatch|$(BINDIR)/plcwatch|g' \
	    -e 's|^Documentation=.*|Documentation=man:plcwatch(1) man:plcwatch-daemon(1) file://$(DOCDIR)/README.md|' \
	    packaging/plcwatch.service > $(DESTDIR)$(UNITDIR)/plcwatch.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/plcwatch.service

deb: ## Debian package in dist/ (nfpm v2.45.2 over a `make install PREFIX=/usr` tree)
	rm -rf dist/root dist/*.deb && mkdir -p dist
	$(MAKE) install PREFIX=/usr UNITDIR=/usr/lib/systemd/system DESTDIR=$(CURDIR)/dist/root
	install -d dist/root/etc/plcwatch
	sed -e 's|^\(  path: \)plcwatch.db|\1/var/lib/plcwatch/plcwatch.db|' \
	    -e 's|^\(    path: \)plcwatch-alerts.jsonl|\1/var/lib/plcwatch/plcwatch-alerts.jsonl|' \
	    plcwatch.example.yaml > dist/root/etc/plcwatch/plcwatch.yaml
	chmod 0640 dist/root/etc/plcwatch/plcwatch.yaml
	DEB_VERSION='$(DEB_VERSION)' GOARCH=$$($(GO) env GOARCH) $(GO) run $(NFPM) package --config packaging/nfpm.yaml --packager deb --target dist/

deb-test: deb ## install the .deb (dpkg -i as root under CI=true, else dpkg-deb -x) and run it
	packaging/test-deb.sh dist/plcwatch_*.deb

demo: build ## run the demo against the built-in simulators
	$(BIN) demo --dir demo-run $(DEMOFLAGS)

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
	rm -rf bin demo-run bench.out dist
