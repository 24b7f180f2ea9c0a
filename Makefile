# Cordon: make build | test | demo | bench | fuzz | package | release | reproducible | generate | check
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# The build date is the commit's time (or SOURCE_DATE_EPOCH when set), so
# the same sources give the same bytes.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
DATE     := $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r $(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
BUILDINFO := github.com/cordon-edr/cordon/cmd/internal/buildinfo
LDFLAGS  := -s -w -buildid= -X $(BUILDINFO).Version=$(VERSION) -X $(BUILDINFO).Commit=$(COMMIT) -X $(BUILDINFO).Date=$(DATE)
BINARIES := cordon-agent cordon-collector cordonctl cordon-loadgen
# make release: every platform a release ships for.
PLATFORMS := linux/amd64 linux/arm64 windows/amd64 darwin/amd64 darwin/arm64
FUZZTIME ?= 20s

export SOURCE_DATE_EPOCH

.PHONY: all build test demo bench fuzz package release reproducible generate check clean

all: build

build:
	@mkdir -p bin
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./cmd/,$(BINARIES))

# The end-to-end tests start the binaries from bin/, so test builds first.
test: build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 12m ./...

# A collector with its store in ./demo-data, a local agent enrolled with it,
# and a drill that opens an incident. DEMO_ONCE=1 exits after printing it.
demo: build
	$(GO) run ./cmd/demo

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./...

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Regenerates the protobuf code in protocol/ (needs protoc; protoc-gen-go
# is installed at the version go.mod pins).
generate:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go
	cd protocol && PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc --go_out=. --go_opt=paths=source_relative cordon.proto

# Tarballs of the binaries for this platform in dist/.
package: build
	@mkdir -p dist
	tar -czf dist/cordon-$(VERSION)-$$($(GO) env GOOS)-$$($(GO) env GOARCH).tar.gz bin/ README.md docs/

check: test
	GOOS=windows $(GO) build ./...
	GOOS=darwin $(GO) build ./...

clean:
	rm -rf bin dist
