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
# make release: the binaries and platforms a release ships.
RELEASE_BINARIES := cordon-agent cordon-collector cordonctl
PLATFORMS := linux/amd64 linux/arm64 windows/amd64 darwin/amd64 darwin/arm64
# Stamped by -ldflags, so the go tool's own VCS stamp would only make a
# build from a checkout differ from one from a source archive.
BUILDFLAGS := -trimpath -buildvcs=false
FUZZTIME ?= 20s

export SOURCE_DATE_EPOCH

.PHONY: all build test demo bench fuzz package release reproducible cross generate check clean

all: build

build:
	@mkdir -p bin
	$(GO) build $(BUILDFLAGS) -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./cmd/,$(BINARIES))

# The end-to-end tests start the binaries from bin/, so test builds first.
test: build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

# A collector with its store in ./demo-data, a local agent enrolled with it,
# and a drill that opens an incident. DEMO_ONCE=1 exits after printing it.
demo: build
	$(GO) run ./cmd/demo

# Every benchmark, five times (docs/benchmarks.md). The longest is
# agent/hunter's BenchmarkHunt72h: it fills 72 hours of history once (about
# 1.5 min) and answers twelve hunts per count, the 72-hour scans up to 30 s
# each; CORDON_BENCH_HUNT_SPAN=6h fills 6 hours instead and hunts over 1 and
# 6 hours. CORDON_BENCH_STORM and CORDON_BENCH_IDLE set the sensor
# benchmarks' phases.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./...

# Runs every fuzz target for FUZZTIME each. The go tool's fuzzer can
# stop with a bare "context deadline exceeded" when its time runs out
# while a worker is still starting on a busy machine; such a run found
# nothing (a finding writes its input under testdata/fuzz and says so)
# and is run once more.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$target"; \
	    if ! $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg > .fuzz.out 2>&1; then \
	      cat .fuzz.out; \
	      if grep -q 'context deadline exceeded' .fuzz.out && ! grep -q 'Failing input written' .fuzz.out; then \
	        echo "== $$pkg $$target: the fuzzer's own deadline, once more"; \
	        $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	      else rm -f .fuzz.out; exit 1; fi; \
	    else cat .fuzz.out; fi; \
	    rm -f .fuzz.out; \
	  done; \
	done

# Regenerates the protobuf code in protocol/ (needs protoc; protoc-gen-go
# is installed at the version go.mod pins).
generate:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go
	cd protocol && PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc --go_out=. --go_opt=paths=source_relative cordon.proto

# dist/OS-ARCH/: static, stamped binaries for every platform, and
# dist/SHA256SUMS.
release:
	@set -e; for p in $(PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; \
	  echo "== $$os/$$arch"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(BUILDFLAGS) -ldflags '$(LDFLAGS)' \
	    -o dist/$$os-$$arch/ $(addprefix ./cmd/,$(RELEASE_BINARIES)); \
	done
	cd dist && find . -path './*-*/cordon*' -type f | LC_ALL=C sort | xargs sha256sum > SHA256SUMS

# dist/: .deb and .rpm of the agent and the collector for linux amd64 and
# arm64 (nfpm, see packaging/), and a tarball for every other platform.
package: release
	@set -e; for p in $(filter linux/%,$(PLATFORMS)); do arch=$${p#*/}; \
	  $(GO) run ./packaging/cmd/mkpkg --bin dist/linux-$$arch --arch $$arch \
	    --version $(VERSION) --commit $(COMMIT) --date $(SOURCE_DATE_EPOCH) --out dist; \
	done
	@set -e; for p in $(filter-out linux/%,$(PLATFORMS)); do os=$${p%/*}; arch=$${p#*/}; \
	  tar --sort=name --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner \
	    -cf - -C dist/$$os-$$arch . -C $(CURDIR) README.md docs packaging/etc | gzip -n > dist/cordon-$(VERSION)-$$os-$$arch.tar.gz; \
	  echo dist/cordon-$(VERSION)-$$os-$$arch.tar.gz; \
	done

# Builds the release twice, the second time from an archive of HEAD in
# another folder with an empty build cache, and compares every byte.
reproducible:
	@test -z "$$(git status --porcelain)" || { echo "reproducible: commit first, the check builds HEAD"; exit 1; }
	rm -rf dist && $(MAKE) --no-print-directory release PLATFORMS=linux/amd64
	@set -e; tmp=$$(mktemp -d); trap 'chmod -R u+w $$tmp; rm -rf $$tmp' EXIT; \
	  git archive HEAD | tar -x -C $$tmp; \
	  GOCACHE=$$tmp/.cache $(MAKE) --no-print-directory -C $$tmp release PLATFORMS=linux/amd64 \
	    VERSION=$(VERSION) COMMIT=$(COMMIT) SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH); \
	  diff dist/SHA256SUMS $$tmp/dist/SHA256SUMS && echo "reproducible: identical" && cat dist/SHA256SUMS

check: test cross

# Compiles every package for the release platforms other than this one
# (compiling, not linking); CI narrows CROSS to one per OS.
CROSS ?= $(filter-out linux/amd64,$(PLATFORMS))
cross:
	@set -e; for p in $(CROSS); do \
	  echo "== $$p"; CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build ./...; \
	done

clean:
	rm -rf bin dist
