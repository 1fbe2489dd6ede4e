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
BUILD_PACKAGES := libevent-dev libssl-dev pkg-config libnghttp2-dev
TEST_PACKAGES  := curl nginx openssl iproute2 iputils-arping haproxy prometheus chromium keepalived nghttp2-client
BENCH_PACKAGES := wrk haproxy nginx valgrind binutils nghttp2-client
# Fuzzing (scripts/fuzz.sh): seconds per target for `make fuzz` and for the smoke run in `make test`.
FUZZ_SECONDS       ?= 600
FUZZ_SMOKE_SECONDS ?= 8
FUZZ_JOBS          ?= 1
FUZZ_TARGETS       ?=

# `make install` / `make deb`: where things go, and the binary installed (already built: neither
# target builds, so a test can install the binary it has; `make build` first).
PREFIX      ?= /usr/local
DESTDIR     ?=
SYSCONFDIR  ?= /etc
BINDIR      ?= $(PREFIX)/bin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/weir
INSTALL_BIN ?= $(RELEASE_BIN)
VERSION     := $(shell sed -n 's/^\#define WEIR_VERSION "\(.*\)"/\1/p' Sysroot/CWeirBuild/shim.h)
DEB_ARCH    ?= $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_OUT     ?= .build
DEB_LEVEL   ?= 9

.PHONY: run test build deps test-deps bench-deps unit e2e bench bench-all bench-instructions check clean tls-audit tls-deps fuzz bench-peers install deb man

run: deps build
	@scripts/run-demo.sh $(RELEASE_BIN) $(CONF)

test: deps test-deps
	@scripts/build-stamp.sh
	$(SWIFT) build -c release $(RELEASE_FLAGS)
	$(SWIFT) test
	WEIR_BIN=$(RELEASE_BIN) python3 -m pytest Tests/EndToEnd -q
	FUZZ_CONFIG=debug FUZZ_JOBS=2 scripts/fuzz.sh smoke $(FUZZ_SMOKE_SECONDS)

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
	python3 scripts/bench/instructions.py --weir $(RELEASE_BIN) --haproxy $(BENCH_ARGS)

# The peer rule simulated (8 peers, stale reports, herding); deterministic, a few seconds. SIM_ARGS="--seed 7 --seconds 300".
bench-peers:
	$(SWIFT) build -c release $(RELEASE_FLAGS) --product weir-peer-sim
	.build/release/weir-peer-sim $(SIM_ARGS)

tls-audit: deps tls-deps build
	WEIR_BIN=$(RELEASE_BIN) scripts/tls-audit.sh

check: build
	$(RELEASE_BIN) check -c $(CONF)

# The build stamp first: `weir version` names the commit built (scripts/build-stamp.sh).
build:
	@scripts/build-stamp.sh
	$(SWIFT) build -c release $(RELEASE_FLAGS)

# weir(8) from the binary's own command tree, weir.toml(5) from the shipped conf.d (scripts/gen-man.py).
man:
	@test -x $(INSTALL_BIN) || { echo "make man: $(INSTALL_BIN) is missing: run make build first" >&2; exit 1; }
	python3 scripts/gen-man.py $(INSTALL_BIN) conf.d .build/man

# The binary, both units (their paths rewritten to BINDIR and SYSCONFDIR), conf.d into
# SYSCONFDIR/weir (an existing file is never overwritten), the README and the man pages.
install: man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/weir/conf.d \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 0755 $(INSTALL_BIN) $(DESTDIR)$(BINDIR)/weir
	for unit in systemd/*.service; do \
		sed -e 's|/usr/local/bin/weir|$(BINDIR)/weir|g' -e 's|/etc/weir/|$(SYSCONFDIR)/weir/|g' $$unit \
			> $(DESTDIR)$(UNITDIR)/$$(basename $$unit) && chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$unit); \
	done
	for conf in conf.d/*.toml; do \
		target=$(DESTDIR)$(SYSCONFDIR)/weir/conf.d/$$(basename $$conf); \
		if [ -e $$target ]; then echo "keeping $$target (exists)"; else install -m 0644 $$conf $$target; fi; \
	done
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 0644 .build/man/man8/weir.8 $(DESTDIR)$(MANDIR)/man8/weir.8
	install -m 0644 .build/man/man5/weir.toml.5 $(DESTDIR)$(MANDIR)/man5/weir.toml.5

# weir_VERSION_ARCH.deb in DEB_OUT: `make install PREFIX=/usr` staged, then dpkg-deb (scripts/make-deb.sh).
deb:
	rm -rf .build/deb-root
	$(MAKE) --no-print-directory install DESTDIR=$(abspath .build/deb-root) PREFIX=/usr UNITDIR=/usr/lib/systemd/system \
		INSTALL_BIN=$(abspath $(INSTALL_BIN))
	scripts/make-deb.sh $(abspath .build/deb-root) $(VERSION) $(DEB_ARCH) $(abspath $(DEB_OUT)) $(DEB_LEVEL)

deps:
	@scripts/install-packages.sh $(BUILD_PACKAGES)

test-deps:
	@scripts/install-packages.sh $(TEST_PACKAGES)
	@python3 -m pytest --version >/dev/null 2>&1 || python3 -m pip install --quiet pytest
	@python3 -c "import requests" >/dev/null 2>&1 || python3 -m pip install --quiet requests
	@python3 -c "import h2, httpx" >/dev/null 2>&1 || python3 -m pip install --quiet h2 httpx

bench-deps:
	@scripts/install-packages.sh $(BENCH_PACKAGES)

tls-deps:
	@scripts/install-packages.sh testssl.sh

clean:
	rm -rf .build
