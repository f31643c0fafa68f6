# shardd: make build | run | test | bench | lint | fuzz-smoke
GO        ?= go
BIN       ?= bin
ARGS      ?= --proto udp :5353
BENCH     ?= .
BENCH_FLAGS ?= -benchmem
FUZZTIME  ?= 10s
# What shardd version prints when the build carries no VCS stamp (go run,
# -buildvcs=false, GOFLAGS=-buildvcs=false): passed with -ldflags.
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X main.gitVersion=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build run run-dns test attack bench bench-go bench-cpu bench-perf lint fuzz-smoke clean

all: lint test

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# run and run-dns build bin/shardd and exec it, so shardd is make's own
# child: a TERM or INT to make reaches shardd, which stops and frees the
# port (under go run, a TERM to go run left its child serving).
run: build
	exec ./$(BIN)/shardd $(ARGS)

# An authoritative DNS server for the example zones on :5353 (UDP and TCP):
#   dig @127.0.0.1 -p 5353 www.example.com
run-dns: build
	exec ./$(BIN)/shardd --handler dns --proto udp,tcp \
	  --zone testdata/dns/example.com.zone --zone testdata/dns/2.0.192.in-addr.arpa.zone $(DNS_ARGS) :5353

# The race detector is on; tests that need root or third-party clients skip
# themselves without them unless SHARDD_REQUIRE_TOOLS=1 (set by .ci/run).
# testsummary runs go test -json: it prints what go test prints without -v,
# then lists the failed tests and the skipped ones with their reasons, and
# exits with go test's code.
test:
	$(GO) build -o $(BIN)/testsummary ./cmd/internal/testsummary
	GO=$(GO) ./$(BIN)/testsummary -race -shuffle=on -count=1 -timeout 20m ./...

# The standing attack suite alone (also part of make test): port hijack by
# another user, non-reading and slow TCP clients, /metrics exhaustion,
# garbage DNS, descriptor exhaustion. Tests named TestAttack*; loopback only,
# bounded in count and time. README "Security" gives each attack's figure.
attack:
	$(GO) test -race -count=1 -timeout 10m -run 'Attack' -v ./...

# The side-by-side suite: naive Go server, shardd 1 shard, one per CPU, pinned
# (and peers: BENCH_ARGS="--peer 'name=cmd {port}'"), discard and echo, 64 and
# 512 bytes, interleaved repetitions; table, JSON and chart into BENCH_OUT.
BENCH_OUT ?= out/bench
BENCH_ARGS ?=
bench: build
	./$(BIN)/shardbench --bin $(BIN) --out $(BENCH_OUT) $(BENCH_ARGS)

# Per-datagram costs (handler path, batch codec, shard loop) with allocations.
bench-go:
	$(GO) test -run '^$$' -bench '$(BENCH)' $(BENCH_FLAGS) ./packet/... ./metrics/ ./shard/mmsg/
	$(GO) test -run '^$$' -bench 'ShardLoop|ServeBatch' $(BENCH_FLAGS) ./shard/

# User-space instructions per datagram under callgrind: repeatable where
# wall-clock time is not. Two iteration counts; the difference over the
# extra datagrams cancels start-up. Kernel work is not counted.
CPU_BENCHES ?= shard:ServeBatch/echo$$ shard:ServeBatch/discard$$ shard:ShardLoop/discard-64B$$ shard:ShardLoop/echo-64B$$ \
	packet/dns:ServePacket/A$$ packet/dns:ServePacket/wildcard$$
bench-cpu:
	@command -v valgrind >/dev/null || { echo "bench-cpu needs valgrind (apt-get install valgrind)"; exit 1; }
	@for pb in $(CPU_BENCHES); do \
	  pkg=$${pb%%:*}; b=$${pb#*:}; t=$(CURDIR)/$(BIN)/cpu-$$(echo $$pkg | tr / -).test; \
	  $(GO) test -c -o $$t ./$$pkg || exit 1; \
	  n1=64000; n2=128000; \
	  ir() { (cd $$pkg && GOGC=off GODEBUG=cpu.rdtscp=off,asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
	    $$t -test.run '^$$' -test.bench "$$b" -test.benchtime $${1}x -test.cpu 1 2>&1 | sed -n 's/.*Collected : //p'); }; \
	  a=$$(ir $$n1); c=$$(ir $$n2); \
	  echo "$$pkg $$b $$(( (c - a) / (n2 - n1) )) instructions/op"; \
	done

# The side-by-side receive/echo benchmarks against the naive server and a C
# recvmmsg reader (each round interleaves the variants; see shard/internal/perf).
bench-perf:
	$(GO) test -run '^$$' -bench 'Drain|Competing|Echo' -benchtime 7x -timeout 30m ./shard/internal/perf/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	$(GO) mod tidy -diff
	GO=$(GO) ./.ci/layers

fuzz-smoke:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf $(BIN)
