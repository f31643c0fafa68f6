# shardd: make build | run | test | bench | lint | fuzz-smoke
GO        ?= go
BIN       ?= bin
ARGS      ?= --proto udp :5353
BENCH     ?= .
BENCH_FLAGS ?= -benchmem
FUZZTIME  ?= 10s

.PHONY: all build run test bench bench-perf lint fuzz-smoke clean

all: lint test

build:
	$(GO) build -o $(BIN)/ ./cmd/...

run:
	$(GO) run ./cmd/shardd $(ARGS)

# The race detector is on; tests that need root or third-party clients skip
# themselves without them unless SHARDD_REQUIRE_TOOLS=1 (set by .ci/run).
test:
	$(GO) test -race -shuffle=on -count=1 -timeout 20m ./...

# Per-datagram costs (handler path, shard loop) with allocations.
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' $(BENCH_FLAGS) ./packet/ ./metrics/
	$(GO) test -run '^$$' -bench 'ShardLoop|ServeBatch' $(BENCH_FLAGS) ./shard/

# The side-by-side receive/echo benchmarks against the naive server and a C
# recvmmsg reader (each round interleaves the variants; see shard/perf_linux_test.go).
bench-perf:
	$(GO) test -run '^$$' -bench 'Drain|Competing|Echo' -benchtime 7x -timeout 30m ./shard/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	$(GO) mod tidy -diff

fuzz-smoke:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf $(BIN)
