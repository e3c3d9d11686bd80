# bounced — run `make help` for the targets.
SHELL    := bash
GO       ?= go
BIN      := bin/bounced
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GOLANGCI ?= $(shell command -v golangci-lint 2>/dev/null || echo $(shell $(GO) env GOPATH)/bin/golangci-lint)

.PHONY: help run build test test-faults lint fuzz bench load load-tool dbwork reproducible postgres clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: build postgres ## build and start bounced on 127.0.0.1:8025 (private PostgreSQL unless DATABASE_URL is set)
	./$(BIN) serve

build: ## build bin/bounced
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/bounced

# Both modules always run, whatever fails first; the end lists every
# failed test and package of both.
test: postgres ## run every test against a real PostgreSQL (TEST_DATABASE_URL or a throwaway one), and the deploy/ files' tests
	@log=$$(mktemp) && trap 'rm -f "$$log"' EXIT; rc=0; \
	echo "$(GO) test -race -count=1 ./..."; \
	$(GO) test -race -count=1 ./... 2>&1 | tee -a "$$log"; [ "$${PIPESTATUS[0]}" = 0 ] || rc=1; \
	echo "cd deploy && $(GO) test -count=1 ./..."; \
	(cd deploy && $(GO) test -count=1 ./...) 2>&1 | tee -a "$$log"; [ "$${PIPESTATUS[0]}" = 0 ] || rc=1; \
	if [ $$rc != 0 ]; then echo; echo "make test: these failed:"; grep -E '^(--- FAIL|FAIL[[:space:]]|panic:)' "$$log" | sed 's/^/  /'; fi; \
	exit $$rc

test-faults: postgres ## only the reliability tests: kill -9 bounced and restart PostgreSQL under load, bad input for every provider
	$(GO) test -count=1 -run '^TestFault' -v ./cmd/bounced/

lint: ## gofmt, go vet and golangci-lint
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd deploy && $(GO) vet ./...
	@if [ -x "$(GOLANGCI)" ]; then $(GOLANGCI) run ./... && cd deploy && $(GOLANGCI) run ./...; else echo "golangci-lint not installed: go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0"; fi

# Go 1.26's fuzz coordinator can fail a target with "context deadline
# exceeded" at the -fuzztime boundary without finding anything
# (go.dev/issue/75804, fixed in Go 1.27): such a run, which writes no
# failing input, is run once more; a written failing input fails at once.
fuzz: ## a short run of every fuzz test
	@for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    for try in 1 2; do \
	      before=$$(ls "$$dir/testdata/fuzz/$$f" 2>/dev/null | wc -l); \
	      echo "fuzz $$pkg $$f"; \
	      if $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-10s} -fuzzminimizetime 200x $$pkg; then break; fi; \
	      after=$$(ls "$$dir/testdata/fuzz/$$f" 2>/dev/null | wc -l); \
	      if [ "$$after" != "$$before" ] || [ $$try = 2 ]; then exit 1; fi; \
	      echo "fuzz $$f failed without a failing input (go.dev/issue/75804); once more"; \
	    done; \
	  done; \
	done

bench: ## benchmarks (the store's and the webhook route's start a PostgreSQL with fsync on)
	$(GO) test -run '^$$' -bench . -benchmem ./...

load: postgres ## bounded loopback load: single check (hot and cold), 1M import, 10k bulk check, 1M export
	$(GO) test ./internal/api -run '^$$' -bench 'SingleCheck' -benchtime 100000x -count 3 -timeout 20m
	$(GO) test ./internal/api -run '^$$' -bench 'Million' -benchtime 1x -count 1 -timeout 30m

load-tool: ## build the webhook load tool bin/bounced-load (see README, "Load testing")
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/bounced-load ./cmd/bounced-load

# A few minutes on 2 cores; DBWORK_FLAGS="-scale 0.5 -paths single" for less,
# "-v" for WAL records by resource manager and the busiest statements.
dbwork: build load-tool postgres ## database work per stored event (WAL, buffers, commits, CPU) of each ingest path, beside the floor
	./bin/bounced-load -dbwork -bounced $(BIN) $(DBWORK_FLAGS)

# The Dockerfile's build step, byte for byte.
REPRO_BUILD := CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)'

reproducible: ## build bounced as the Dockerfile does, twice (here, and from a copy elsewhere with an empty build cache), and compare
	$(REPRO_BUILD) -o bin/bounced.repro ./cmd/bounced
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && mkdir -p "$$tmp/elsewhere/src" && \
	git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$$tmp/elsewhere/src" && \
	(cd "$$tmp/elsewhere/src" && GOCACHE="$$tmp/cache" $(REPRO_BUILD) -o "$$tmp/bounced" ./cmd/bounced) && \
	a=$$(sha256sum < bin/bounced.repro) && b=$$(sha256sum < "$$tmp/bounced") && \
	if [ "$$a" = "$$b" ]; then echo "reproducible: both builds are $${a%% *}"; else echo "not reproducible: $$a vs $$b"; exit 1; fi

# postgres makes sure the PostgreSQL server binaries are installed: bounced
# and its tests start a private server from them when no URL is given.
postgres:
	@if [ -n "$$DATABASE_URL$$BOUNCED_DATABASE_URL$$TEST_DATABASE_URL" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing PostgreSQL server binaries (apt-get install -y postgresql)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }; \
	else echo "PostgreSQL server binaries not found. Install them (Debian/Ubuntu: sudo apt-get install -y postgresql) or set DATABASE_URL."; exit 1; fi

clean: ## remove build output (not the private database in .bounced/)
	rm -rf bin
