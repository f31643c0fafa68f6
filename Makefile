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

.PHONY: all build run run-dns test attack bench bench-dnssec bench-go bench-cpu bench-perf lint fuzz-smoke clean signed-zones
.PHONY: install deb

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

# The signed copies of the example zones (testdata/dns/signed), their keys
# and trust anchors, made again after a zone changes (BIND's dnssec-keygen and
# dnssec-signzone; NEWKEYS=1 for new keys, ZONES="example.com ..." to sign
# only those again). Not part of make test: the signed files are committed.
signed-zones:
	NEWKEYS=$(NEWKEYS) testdata/dns/signed/gen.sh $(ZONES)

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

# The dns mode on the signed example zones with the DO bit on every query:
# shardd, Knot DNS and NSD (answer sections checked alike), interleaved;
# dnsperf only (shardload's one query has no DO bit).
bench-dnssec: build
	./$(BIN)/shardbench --bin $(BIN) --out $(BENCH_OUT)-dnssec --modes dns --dns-dnssec --dns-nsd nsd --dns-clients dnsperf \
	  --dns-zones testdata/dns/signed/example.com.zone,testdata/dns/signed/2.0.192.in-addr.arpa.zone $(BENCH_ARGS)

# Per-datagram costs (handler path, batch codec, shard loop) with allocations.
bench-go:
	$(GO) test -run '^$$' -bench '$(BENCH)' $(BENCH_FLAGS) ./packet/... ./metrics/ ./shard/mmsg/
	$(GO) test -run '^$$' -bench 'ShardLoop|ServeBatch' $(BENCH_FLAGS) ./shard/

# User-space instructions per datagram under callgrind: repeatable where
# wall-clock time is not. Two iteration counts; the difference over the
# extra datagrams cancels start-up. Kernel work is not counted.
CPU_BENCHES ?= shard:ServeBatch/echo$$ shard:ServeBatch/discard$$ shard:ShardLoop/discard-64B$$ shard:ShardLoop/echo-64B$$ shard:ShardLoopGRO$$ \
	packet/dns:ServePacket$$/^A$$ packet/dns:ServePacket$$/^wildcard$$ packet/dns:ServePacketDNSSEC$$/nxdomain-nsec3$$
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

# make lint builds and vets (test files included) for each of these: the
# README's platforms. Off Linux shardd runs one shard per address.
CROSS_PLATFORMS ?= linux/amd64 linux/arm64 freebsd/amd64 darwin/arm64 windows/amd64

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	$(GO) mod tidy -diff
	GO=$(GO) ./.ci/layers
	@for p in $(CROSS_PLATFORMS); do \
	  echo "cross: $$p"; \
	  GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build ./... || exit 1; \
	  GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) vet ./... || exit 1; \
	done

fuzz-smoke:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary as make build
# builds it, the systemd units (ExecStart pointing at SBINDIR), shardd(8)
# and the bash and zsh completions, all three generated by the built binary
# from its own flag definitions into $(BIN).
PREFIX      ?= /usr/local
SBINDIR     ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
UNITDIR     ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions

install: build
	$(BIN)/shardd man > $(BIN)/shardd.8
	gzip -9n < $(BIN)/shardd.8 > $(BIN)/shardd.8.gz
	$(BIN)/shardd completion bash > $(BIN)/shardd.bash
	$(BIN)/shardd completion zsh > $(BIN)/_shardd
	sed 's|/usr/sbin/shardd|$(SBINDIR)/shardd|' cmd/shardd/shardd.service > $(BIN)/shardd.service
	install -D -m 0755 $(BIN)/shardd $(DESTDIR)$(SBINDIR)/shardd
	install -D -m 0644 $(BIN)/shardd.service $(DESTDIR)$(UNITDIR)/shardd.service
	install -D -m 0644 cmd/shardd/shardd.socket $(DESTDIR)$(UNITDIR)/shardd.socket
	install -D -m 0644 $(BIN)/shardd.8.gz $(DESTDIR)$(MANDIR)/man8/shardd.8.gz
	install -D -m 0644 $(BIN)/shardd.bash $(DESTDIR)$(BASHCOMPDIR)/shardd
	install -D -m 0644 $(BIN)/_shardd $(DESTDIR)$(ZSHCOMPDIR)/_shardd

# make deb: a Debian package built with dpkg-deb into $(BIN): /usr/sbin/shardd,
# the units in /lib/systemd/system (DynamicUser), shardd(8), completions,
# /etc/default/shardd and example zones in /etc/shardd/zones (conffiles).
# Installing it neither enables nor starts the service.
DEB_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//; s/-/+/g'); \
	echo $${v:-0.0~git$$(git rev-parse --short HEAD 2>/dev/null || echo 0)})
DEB_ARCH    ?= $(shell $(GO) env GOARCH)
DEB_ZONES   ?= testdata/dns/example.com.zone testdata/dns/2.0.192.in-addr.arpa.zone
DEB_ROOT     = $(BIN)/deb/root
DEB_FILE     = $(BIN)/shardd_$(DEB_VERSION)_$(DEB_ARCH).deb

deb:
	@command -v dpkg-deb >/dev/null || { echo "make deb needs dpkg-deb (apt-get install dpkg)"; exit 1; }
	rm -rf $(BIN)/deb
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr UNITDIR=/lib/systemd/system \
	  ZSHCOMPDIR=/usr/share/zsh/vendor-completions
	install -D -m 0644 cmd/shardd/shardd.default $(DEB_ROOT)/etc/default/shardd
	for z in $(DEB_ZONES); do install -D -m 0644 $$z $(DEB_ROOT)/etc/shardd/zones/$$(basename $$z) || exit 1; done
	install -D -m 0644 LICENSE $(DEB_ROOT)/usr/share/doc/shardd/copyright
	mkdir -p $(DEB_ROOT)/DEBIAN
	cd $(DEB_ROOT) && find etc -type f | sed 's|^|/|' | sort > DEBIAN/conffiles
	{ echo "Package: shardd"; \
	  echo "Version: $(DEB_VERSION)"; \
	  echo "Architecture: $(DEB_ARCH)"; \
	  echo "Maintainer: shardd maintainers <maintainers@users.noreply.github.com>"; \
	  echo "Installed-Size: $$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)"; \
	  echo "Section: net"; \
	  echo "Priority: optional"; \
	  echo "Homepage: https://github.com/shardd/shardd"; \
	  echo "Description: UDP and TCP server with one SO_REUSEPORT socket per CPU"; \
	  echo " shardd serves UDP (and TCP) on one SO_REUSEPORT socket per CPU, each"; \
	  echo " read in batches by its own thread: echo, discard, authoritative DNS from"; \
	  echo " zone files, or syslog to a file. The shardd service answers DNS for the"; \
	  echo " example zones in /etc/shardd/zones; see /etc/default/shardd."; \
	} > $(DEB_ROOT)/DEBIAN/control
	dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB_FILE)
	@echo "built $(DEB_FILE)"

clean:
	rm -rf $(BIN)
