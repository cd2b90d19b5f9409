# MetaStore build tooling.
#
# Everything is built from source with the Go toolchain; the only network
# access needed is the Go module proxy. Override the toolchain with e.g.
# `make GO=/path/to/go test`.

GO       ?= go
BIN      ?= bin
FUZZTIME ?= 10s
# Extra arguments for `make run`, e.g. make run ARGS='--listen-client-urls ...'
ARGS     ?=

# Packages with heavy concurrency: always tested under the race detector.
RACE_PKGS  := ./actors/... ./shards/... ./rpc/... ./storage/... ./snapshot/... ./metrics/...
# Packages with real Go benchmarks (bench/tools and bench/harness are nested
# modules and are not matched by ./bench/...).
BENCH_PKGS := ./bench/... ./shards/... ./actors/... ./storage/...

.PHONY: all check build tools harness run test race vet bench bench-quick bench-go bench-go-quick fuzz lint clean \
	$(BIN)/metastore $(BIN)/etcdctl $(BIN)/etcdutl $(BIN)/etcd $(BIN)/benchmark $(BIN)/harness

all: build tools

## check: print the Go toolchain in use and the version go.mod asks for.
check:
	@$(GO) version
	@echo "go.mod requires: $$(sed -n 's/^go //p' go.mod)"

## build: the MetaStore server binary.
build: $(BIN)/metastore

$(BIN)/metastore:
	$(GO) build -o $@ ./cmd/metastore

## tools: real etcdctl, etcdutl and etcd (v3.7.x, main module) and the etcd
## benchmark tool (v3.6.8, separate module bench/tools).
tools: $(BIN)/etcdctl $(BIN)/etcdutl $(BIN)/etcd $(BIN)/benchmark

$(BIN)/etcdctl:
	$(GO) build -o $@ ./cmd/etcdctl

$(BIN)/etcdutl:
	$(GO) build -o $@ ./cmd/etcdutl

$(BIN)/etcd:
	$(GO) build -o $@ ./cmd/etcd

$(BIN)/benchmark:
	cd bench/tools && GOWORK=off $(GO) build -o $(abspath $@) ./benchmark

## harness: the benchmark harness behind `make bench*` (separate module
## bench/harness, so its plotting libraries stay out of the server's go.mod).
## Run it from the repository root: bin/harness --help.
harness: $(BIN)/harness

$(BIN)/harness:
	cd bench/harness && GOWORK=off $(GO) build -o $(abspath $@) .

## run: build and run the server in the foreground.
run: build
	./$(BIN)/metastore $(ARGS)

## test: vet, race-test the concurrent packages, run every test (including
## the integration tests in test/ and the harness's, a module of its own),
## then show that the linearizability check fails the deliberately broken
## stale-reads build (the test passes when it does).
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 $(RACE_PKGS)
	$(GO) test -count=1 -timeout 30m ./...
	cd bench/harness && GOWORK=off $(GO) test -count=1 ./...
	$(GO) test -count=1 -tags metastore_fault_stalereads -run 'TestLinearizability$$/metastore' ./test/

race:
	$(GO) test -race -count=1 $(RACE_PKGS)

vet:
	$(GO) vet ./...

## bench-go: Go benchmarks of the hot paths (shard put, cross-shard Txn,
## range merge, the sequencer's commit batch, the storage commit group),
## named for benchstat (sub-benchmarks like shards=4/clients=128).
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem $(BENCH_PKGS)

## bench-go-quick: the same, fixed small iteration count (smoke run).
bench-go-quick:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=2000x $(BENCH_PKGS)

## fuzz: run every FuzzXxx target in the main module for FUZZTIME each
## (the nested modules bench/tools and bench/harness are skipped).
fuzz:
	@set -e; found=0; \
	for f in $$(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v -e '^\./bench/tools/' -e '^\./bench/harness/' -e '/testdata/' | sort); do \
		dir=$$(dirname "$$f"); \
		for fn in $$(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$$f"); do \
			found=1; \
			echo "== fuzz $$dir $$fn ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) "$$dir"; \
		done; \
	done; \
	if [ "$$found" = 0 ]; then echo "no Fuzz targets found"; fi

## lint: gofmt must report nothing; go vet must pass (all three modules).
lint:
	@out=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -print0 | xargs -0 -r gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd bench/tools && GOWORK=off $(GO) vet ./...
	cd bench/harness && GOWORK=off $(GO) vet ./...

clean:
	rm -rf $(BIN)
	rm -f *.test cpu.out mem.out cpu.prof mem.prof *.pprof

## bench: MetaStore (durable, in-memory) against etcd and a
## no-storage ceiling server with bin/benchmark; writes bench/results/*.json
## and docs/benchmarks.md. Run it on a quiet machine. HARNESS_ARGS adds flags.
HARNESS_ARGS ?=
bench: build tools harness
	$(BIN)/harness --bin $(BIN) $(HARNESS_ARGS)

## bench-quick: the same with small totals and 100,000 restart keys
## (a smoke run, under 3 minutes).
bench-quick: build tools harness
	$(BIN)/harness --bin $(BIN) --quick $(HARNESS_ARGS)

## metrics-picture: MetaStore's own metrics under put and txn load, drawn
## into docs/img/metrics-load.png (explained in docs/metrics.md); about a
## minute.
.PHONY: metrics-picture
metrics-picture: build tools harness
	$(BIN)/harness metrics --bin $(BIN)

## bench-sweep: MetaStore alone (durable, in-memory) on put-100 and txn-put
## across 1..32 shards, with write batching on and off (--max-batch 512
## and 1), and on each mailbox kind (--mailbox-dispatcher/--mailbox-queue);
## tables and charts in docs/benchmarks.md and docs/img/. Half the full
## totals, 3 rounds (median shown): about 20 minutes on a 2-core VM.
SWEEP_ARGS := --sweep-shards 1,2,4,8,16,32 --sweep-batch --sweep-mailbox
.PHONY: bench-sweep bench-sweep-quick
bench-sweep: build tools harness
	$(BIN)/harness --bin $(BIN) $(SWEEP_ARGS) --scale 0.5 --rounds 3 $(HARNESS_ARGS)

## bench-sweep-quick: the same sweeps with small totals, one round (a smoke
## run, under 3 minutes).
bench-sweep-quick: build tools harness
	$(BIN)/harness --bin $(BIN) --quick $(SWEEP_ARGS) $(HARNESS_ARGS)

## bench-secure: MetaStore (durable) and etcd side by side on put-100 and
## range-l in the clear, with auth on (simple token, bin/benchmark --user
## root) and over mutual TLS (certificates made by the harness); a section of
## docs/benchmarks.md of its own. 3 rounds (median shown): about 20 minutes
## on a 2-core VM. `make bench` does not run it.
.PHONY: bench-secure bench-secure-quick
bench-secure: build tools harness
	$(BIN)/harness --bin $(BIN) --secure --rounds 3 $(HARNESS_ARGS)

## bench-secure-quick: the same with small totals, one round (a smoke run,
## under 3 minutes).
bench-secure-quick: build tools harness
	$(BIN)/harness --bin $(BIN) --secure --quick $(HARNESS_ARGS)
