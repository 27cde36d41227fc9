# xdpns — build, demo, tests, benchmark, fuzzing.
#
#   make demo    install what is missing, build, run the built-in demo
#   make test    install what is missing, run every test
#   make build   build bin/xdpns
#   make bench   the benchmark harness, quick mode (about 5 minutes): xdpns
#                (XDP native, generic, userspace) vs Knot (XDP, UDP), NSD and
#                BIND on the veth lab, kxdpgun and dnsperf; JSON lines, report
#                and plots in bench/out/<time>/ (bench/README.md)
#   make bench-full  the same, every scenario (1M-name zone and the coverage
#                scenarios of issue 10 too), then many-zones (bench-manyzones
#                into its own section of RESULTS.md), 3 rounds of
#                10 s runs (about 2 hours); writes bench/RESULTS.md and
#                bench/results/*.svg
#   make bench-micro  go test -bench: the XDP program (BPF_PROG_RUN), the map
#                writer, the engine, the compiler, the responder
#   make bench-userspace  xdpns vs NSD and Knot over loopback (dnsperf)
#   make bench-heap  heap per RR of a 1M-RR zone
#   make bench-xfr  secondaries behind BIND: transfer of a 1M-RR zone and
#                propagation of updates, xdpns vs Knot and NSD
#   make bench-xdp  alias of make bench
#   make fuzz    fuzz every target for FUZZTIME each
#   make generate       rebuild the BPF objects and their Go bindings (bpf2go)
#   make check-generated  fail if the committed objects differ from bpf/ (CI)
#
# Installing needs root (it runs .ci/deps.sh, which does nothing when every
# package is there already). See docs/testing.md.

SHELL := /bin/bash
# Go from the official tarball lives here; a PATH without it still works.
export PATH := $(PATH):/usr/local/go/bin

GO        ?= go
BIN       ?= bin
# Race detector off: the suite runs reference servers and load, and -race
# makes it several times slower. Add TESTFLAGS=-race to turn it on.
TESTFLAGS ?=
TIMEOUT   ?= 15m
FUZZTIME  ?= 20s
# Extra flags for the userspace benchmark, e.g. BENCHFLAGS="-rate 100000".
BENCHFLAGS ?=
# Extra flags for the harness, e.g. HARNESSFLAGS="-servers xdpns-native,knot-xdp -scenarios hit".
HARNESSFLAGS ?=

.PHONY: all deps build demo test vet generate check-generated bench bench-full bench-micro bench-userspace bench-manyzones bench-heap fuzz clean

all: build

deps:
	bash .ci/deps.sh

build:
	$(GO) build -o $(BIN)/xdpns ./cmd/xdpns

demo: deps build
	$(BIN)/xdpns demo

test: deps
	$(GO) test -count=1 -timeout $(TIMEOUT) $(TESTFLAGS) ./...

vet:
	$(GO) vet ./...

# The XDP program is compiled with clang-16 through bpf2go; the .o files and
# Go bindings are committed so a build needs no clang.
generate: deps
	$(GO) generate ./loader

# CI: regenerate and compare with what is committed.
check-generated: generate
	@git diff --exit-code -- bpf loader || { echo "check-generated: the committed BPF objects do not match bpf/*.c; run make generate and commit"; exit 1; }

# The benchmark harness (bench/cmd/harness, bench/README.md). Holds
# /tmp/xdpns-bench.lock while it measures; tears down its namespaces,
# processes and XDP programs on every exit, Ctrl-C included.
bench: deps build
	$(GO) run ./bench/cmd/harness -mode quick -xdpns-bin $(BIN)/xdpns $(HARNESSFLAGS)

bench-full: deps build
	$(GO) run ./bench/cmd/harness -mode full -xdpns-bin $(BIN)/xdpns -results bench/RESULTS.md $(HARNESSFLAGS)
	@mkdir -p bench/out
	$(GO) run ./bench/cmd/manyzones -xdpns-bin $(BIN)/xdpns -json bench/out/manyzones.jsonl -results bench/RESULTS.md $(MANYZONESFLAGS)

bench-userspace: build
	$(GO) run ./bench/cmd/userspace -xdpns-bin $(BIN)/xdpns $(BENCHFLAGS)

# Many zones (issue 11): N zones of M names, start-to-every-zone-served and
# RSS for xdpns (from files, and restarted from its state dir), knotd, nsd
# and named side by side; the report is Markdown (bench/RESULTS.md).
bench-manyzones: deps build
	@mkdir -p bench/out
	$(GO) run ./bench/cmd/manyzones -xdpns-bin $(BIN)/xdpns -json bench/out/manyzones.jsonl $(MANYZONESFLAGS) | tee bench/out/manyzones.md

bench-heap:
	$(GO) test -run '^$$' -bench HeapPerRR -benchtime 1x ./userspace/zone

# Micro-benchmarks (bench/RESULTS.md): the XDP program through BPF_PROG_RUN
# on the real hit path (ns per answer net of an empty program; root), the
# map writer (UpdateZone on a 1M-name zone), the engine, the compiler and
# the Go responder's table path.
bench-micro: deps
	$(GO) test -run '^$$' -bench 'Hit' -benchtime 200000x ./loader
	$(GO) test -run '^$$' -bench 'Update' -benchtime 20x ./loader
	$(GO) test -run '^$$' -bench 'Lookup' ./userspace/answer
	$(GO) test -run '^$$' -bench 'Build|Update' -benchtime 3x ./userspace/compile
	$(GO) test -run '^$$' -bench 'Respond' ./userspace/responder

# Secondaries behind one BIND primary (bench/README.md): prints the report
# and appends it to bench/README.md; JSON lines go to bench/out/xfr.jsonl.
# Extra flags, e.g. XFRFLAGS="-records 100000 -updates 20".
XFRFLAGS ?=
.PHONY: bench-xfr
bench-xfr: deps build
	@mkdir -p bench/out
	$(GO) run ./bench/cmd/xfr -xdpns-bin $(BIN)/xdpns -json bench/out/xfr.jsonl -append bench/README.md $(XFRFLAGS)

# The XDP lab benchmark became the harness.
.PHONY: bench-xdp
bench-xdp: bench

# Every func FuzzXxx in a _test.go file, one after the other.
fuzz:
	@set -e; \
	for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | sed 's/^func //'); do \
			echo "== $$dir $$t ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$dir; \
		done; \
	done

clean:
	rm -rf $(BIN)
