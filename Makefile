# Weir: `make run` and `make test` are the two commands; both install what is missing first.
SWIFT        ?= swift
CONF         ?= conf.d
RELEASE_BIN  := .build/release/weir
# The Swift runtime and Foundation linked in: no dynamic symbol binding at start, about 6 MiB less
# resident memory per process, and direct calls instead of PLT stubs on the data path (issue 9).
RELEASE_FLAGS := --static-swift-stdlib
# System packages the build needs (libevent and OpenSSL headers) and those the tests and
# benchmarks drive as real peers (curl as the client, nginx and haproxy as comparison or
# backend servers, wrk as load generator; iproute2 and iputils' arping for the network-namespace
# tests of `weir peer`, which move addresses between hosts and announce them).
BUILD_PACKAGES := libevent-dev libssl-dev pkg-config
TEST_PACKAGES  := curl nginx openssl iproute2 iputils-arping
BENCH_PACKAGES := wrk haproxy nginx valgrind binutils
# Fuzzing (scripts/fuzz.sh): seconds per target for `make fuzz` and for the smoke run in `make test`.
FUZZ_SECONDS       ?= 600
FUZZ_SMOKE_SECONDS ?= 8
FUZZ_JOBS          ?= 1
FUZZ_TARGETS       ?=

.PHONY: run test build deps test-deps bench-deps unit e2e bench bench-all bench-instructions check clean tls-audit tls-deps fuzz bench-peers

run: deps build
	@scripts/run-demo.sh $(RELEASE_BIN) $(CONF)

test: deps test-deps
	$(SWIFT) build -c release $(RELEASE_FLAGS)
	$(SWIFT) test
	WEIR_BIN=$(RELEASE_BIN) python3 -m pytest Tests/EndToEnd -q
	FUZZ_JOBS=2 scripts/fuzz.sh smoke $(FUZZ_SMOKE_SECONDS)

fuzz: deps
	FUZZ_JOBS=$(FUZZ_JOBS) scripts/fuzz.sh run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

unit: deps
	$(SWIFT) test

e2e: deps test-deps build
	WEIR_BIN=$(RELEASE_BIN) python3 -m pytest Tests/EndToEnd -q

# `make bench`: the issue-9 table + workers2 + redirect (~12 min); `make bench-all` adds TLS and policies.
bench: deps bench-deps build
	python3 scripts/bench/bench.py --weir $(RELEASE_BIN) $(BENCH_ARGS)

bench-all: deps bench-deps build
	python3 scripts/bench/bench.py --weir $(RELEASE_BIN) --all $(BENCH_ARGS)

# Instructions per request under callgrind (valgrind), the steady figure on a noisy machine.
bench-instructions: deps bench-deps build
	python3 scripts/bench/instructions.py --weir $(RELEASE_BIN) $(BENCH_ARGS)

# The peer rule simulated (8 peers, stale reports, herding); deterministic, a few seconds. SIM_ARGS="--seed 7 --seconds 300".
bench-peers:
	$(SWIFT) build -c release $(RELEASE_FLAGS) --product weir-peer-sim
	.build/release/weir-peer-sim $(SIM_ARGS)

tls-audit: deps tls-deps build
	WEIR_BIN=$(RELEASE_BIN) scripts/tls-audit.sh

check: build
	$(RELEASE_BIN) check -c $(CONF)

build:
	$(SWIFT) build -c release $(RELEASE_FLAGS)

deps:
	@scripts/install-packages.sh $(BUILD_PACKAGES)

test-deps:
	@scripts/install-packages.sh $(TEST_PACKAGES)
	@python3 -m pytest --version >/dev/null 2>&1 || python3 -m pip install --quiet pytest
	@python3 -c "import requests" >/dev/null 2>&1 || python3 -m pip install --quiet requests

bench-deps:
	@scripts/install-packages.sh $(BENCH_PACKAGES)

tls-deps:
	@scripts/install-packages.sh testssl.sh

clean:
	rm -rf .build
