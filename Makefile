# Cordon: make build | test | demo | bench | fuzz | package | generate | check
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BINARIES := cordon-agent cordon-collector cordonctl
FUZZTIME ?= 20s

.PHONY: all build test demo bench fuzz package generate check clean

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
