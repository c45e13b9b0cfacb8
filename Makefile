# certmagic-rs. On a fresh machine: `make demo` (see it work) and `make test` (prove it).
SHELL := /bin/bash
CARGO ?= cargo
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Real servers the tests and the demo start on 127.0.0.1, from Debian.
APT_PACKAGES := pebble caddy curl valgrind libssl-dev pkg-config binutils bind9 bind9-dnsutils pdns-server pdns-backend-sqlite3 sqlite3 redis-server postgresql haproxy nginx nginx-dev
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))

.PHONY: demo test test-rust test-python test-node test-cluster lint fmt bench bench-micro deps header dts install install-files lib install-check fuzz dist test-dist check-targets nginx-module test-nginx

## Install what is missing (Debian packages).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
		echo "==> installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

## Start a local ACME CA, obtain a real certificate (HTTP-01), serve HTTPS with it, curl it.
demo: deps
	$(CARGO) run --quiet -p certmagic --example demo

## Every test of every language, plus format and lint checks.
test: deps lint test-rust test-python test-node test-cluster test-nginx

## Rust tests, C tests (built and run by ffi/tests), header check.
test-rust:
	$(CARGO) test --workspace
	$(CARGO) run -q -p certmagic --example on_demand

PY_VENV := target/py-venv
PY := $(PY_VENV)/bin/python
## Python: a fresh virtual environment, the package built from source, stubs checked, pytest.
test-python:
	packaging/venv.sh $(PY_VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q maturin pytest mypy typing_extensions hypercorn starlette
	MATURIN_PEP517_ARGS="--profile dev" $(PY) -m pip install -q ./bindings/python
	$(PY) -m mypy.stubtest certmagic._certmagic
	$(PY) -m mypy --strict --cache-dir target/mypy-cache tests/python examples/python
	cd bindings/python/python && $(CURDIR)/$(PY) -m mypy --strict --cache-dir $(CURDIR)/target/mypy-cache certmagic
	$(CARGO) build -q -p certmagic-testsupport --bin pebble-env
	$(PY) -m pytest -q -p no:cacheprovider tests/python --ignore=tests/python/test_cluster.py

NGINX_BUILD := target/nginx-build
NGINX_LIB := target/nginx-lib
## The nginx module (bindings/nginx), built as Debian builds its nginx modules (nginx-dev's
## source tree and flags, `--with-compat`), linking the workspace's libcertmagic (NGINX_PROFILE,
## debug by default):
## target/nginx-build/objs/ngx_http_certmagic_module.so. Against an installed libcertmagic, run
## bindings/nginx's `config` through nginx's configure as its README shows.
NGINX_PROFILE ?= debug
nginx-module:
	$(CARGO) build -q -p certmagic-ffi $(if $(filter release,$(NGINX_PROFILE)),--release)
	rm -rf $(NGINX_LIB) && mkdir -p $(NGINX_LIB)
	ln -s $(CURDIR)/target/$(NGINX_PROFILE)/libcertmagic.so $(NGINX_LIB)/libcertmagic.so
	ln -s libcertmagic.so $(NGINX_LIB)/libcertmagic.so.$(SOMAJOR)
	rm -rf $(NGINX_BUILD) && cp -r /usr/share/nginx/src $(NGINX_BUILD)
	cd $(NGINX_BUILD) && . ./conf_flags && \
		CERTMAGIC_CFLAGS="-I$(CURDIR)/include" \
		CERTMAGIC_LIBS="-L$(CURDIR)/$(NGINX_LIB) -Wl,-rpath,$(CURDIR)/$(NGINX_LIB) -lcertmagic" \
		./configure "$${NGX_CONF_FLAGS[@]}" --add-dynamic-module=$(CURDIR)/bindings/nginx > configure.log
	$(MAKE) -s -C $(NGINX_BUILD) -f objs/Makefile modules

## The nginx module against real nginx (Debian's), Pebble, BIND9 and Caddy (tests/nginx); after
## test-python, whose virtual environment it runs in.
test-nginx: nginx-module
	$(CARGO) build -q -p certmagic-testsupport --bin pebble-env
	$(PY) -m mypy --strict --cache-dir target/mypy-cache tests/nginx
	$(PY) -m pytest -q -p no:cacheprovider tests/nginx

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -q -p certmagic --no-deps

fmt:
	$(CARGO) fmt --all

## Node: the generated binding.d.ts checked, the addon built from source (`npm run build`, as a
## contributor does), the package installed from bindings/node (its platform package left out:
## the addon built here is found beside the loader), tests and examples type-checked with tsc
## --strict, node --test. The published packages are tested by test-dist.
test-node:
	cd bindings/node && npm ci --no-audit --no-fund --ignore-scripts
	cd bindings/node && node scripts/typedefs.mjs --check
	cd bindings/node && CERTMAGIC_NODE_PROFILE=dev npm run build
	cd tests/node && rm -rf node_modules package-lock.json && npm install --no-audit --no-fund --omit=optional
	cd tests/node && npx tsc -p tsconfig.json
	$(CARGO) build -q -p certmagic-testsupport --bin pebble-env
	rm -rf target/node-data-home && mkdir -p target/node-data-home
	cd tests/node && XDG_DATA_HOME=$(CURDIR)/target/node-data-home \
		node --test --test-concurrency=1 api.test.mjs obtain.test.mjs dns.test.mjs on_demand.test.mjs ocsp.test.mjs issuers.test.mjs

## A fleet in four languages (Rust, C, Python, Node) on one Redis, then one PostgreSQL, behind
## HAProxy, against Pebble (tests/python/test_cluster.py); after test-python and test-node, whose
## virtual environment and installed Node package it runs.
test-cluster:
	$(CARGO) build -q -p certmagic-testsupport --bin pebble-env
	$(CARGO) build -q -p certmagic --example serve
	$(CARGO) build -q -p certmagic-ffi
	$(PY) -m pytest -q -p no:cacheprovider tests/python/test_cluster.py

## Regenerate bindings/node/binding.d.ts from the Rust definitions.
dts:
	cd bindings/node && npm ci --no-audit --no-fund --ignore-scripts && node scripts/typedefs.mjs

## Side by side with Go CertMagic (Debian's Caddy) on one Pebble: on-demand issuance, managed
## issuance, cold start, memory per certificate, handshake CPU, restart of an on-demand server;
## and against the floor (a minimal tokio-rustls server). BENCH_QUICK=1: small sizes (CI).
## Results in bench/results/; see bench/README.md.
bench: deps
	$(CARGO) build --release -q -p certmagic-bench
	target/release/certmagic-bench

## Criterion benchmarks of the cache (BENCH_CERTS=20000 for a quicker run), then the C, Python,
## Node and nginx hand-over benchmarks; the figures go to bench/results/micro.md.
MICRO_LOG := target/bench-micro.log
bench-micro: deps
	rm -f $(MICRO_LOG)
	set -o pipefail; $(CARGO) bench -p certmagic 2>&1 | tee -a $(MICRO_LOG)
	$(CARGO) rustc --release -p certmagic-ffi --crate-type cdylib,staticlib
	mkdir -p target/release/c-bench && ln -sf ../libcertmagic.so target/release/c-bench/libcertmagic.so.$(SOMAJOR)
	set -o pipefail; $(PY) tests/python/bench_ssl_context.py 2>&1 | tee -a $(MICRO_LOG) || echo "(run make test-python first for the Python benchmark)"
	set -o pipefail; cd tests/node && node bench_tls_options.mjs 2>&1 | tee -a $(CURDIR)/$(MICRO_LOG) || echo "(run make test-node first for the Node benchmark)"
	set -o pipefail; $(MAKE) --no-print-directory nginx-module NGINX_PROFILE=release && \
		$(PY) tests/nginx/bench_handshake.py 2>&1 | tee -a $(MICRO_LOG) || echo "(run make test-python first for the nginx benchmark)"
	cc -std=c99 -O2 -Iinclude -Itests/c tests/c/bench_get_certificate.c -Ltarget/release -lcertmagic \
		-Wl,-rpath,$(CURDIR)/target/release/c-bench -lpthread -o target/release/c-bench/bench_get_certificate
	set -o pipefail; d=$$(mktemp -d) && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj / \
		-addext subjectAltName=DNS:unmanaged.example.test -keyout $$d/k.pem -out $$d/c.pem 2>/dev/null && \
		CM_STORAGE=$$d CM_UNMANAGED_CRT=$$d/c.pem CM_UNMANAGED_KEY=$$d/k.pem target/release/c-bench/bench_get_certificate \
		| tee -a $(MICRO_LOG); rm -rf $$d
	python3 bench/micro_report.py $(MICRO_LOG) > bench/results/micro.md
	@echo "==> wrote bench/results/micro.md"

FUZZ_SECONDS ?= 20
FUZZ_TARGETS := names pem_and_keys metadata account_and_lock client_hello dns_wire http01_path ocsp_response
## Fuzz every parser of untrusted input for FUZZ_SECONDS each (cargo-fuzz + libFuzzer; the
## corpus in fuzz/corpus grows as it finds new paths). Without a sanitizer: this toolchain is
## stable, and the fuzzed code is safe Rust built with debug assertions and overflow checks.
fuzz:
	command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --version 0.13.2 --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t && \
		$(CARGO) fuzz run --sanitizer none $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) \
			-rss_limit_mb=2048 -print_final_stats=1 || exit 1; \
	done

## Regenerate include/certmagic.h from ffi/src (CI fails when the committed one differs).
header:
	CERTMAGIC_BLESS=1 $(CARGO) test -q -p certmagic-ffi --test header_current

## The C library: libcertmagic.so (soname libcertmagic.so.$(SOMAJOR)) and libcertmagic.a.
lib:
	$(CARGO) rustc --release -p certmagic-ffi --crate-type cdylib,staticlib

## make install PREFIX=/usr/local: library, header and certmagic.pc for pkg-config (the files of
## the C release, built here).
install: lib install-files

# The files of an install from the libraries in BUILD_DIR, without building them. RELOCATABLE=1
# writes a certmagic.pc that finds its prefix from where it lies (the C release tarball).
BUILD_DIR ?= target/release
RELOCATABLE ?=
PC_PREFIX = $(if $(RELOCATABLE),$${pcfiledir}/../..,$(PREFIX))
PC_LIBDIR = $(if $(RELOCATABLE),$${prefix}/lib,$(LIBDIR))
PC_INCLUDEDIR = $(if $(RELOCATABLE),$${prefix}/include,$(INCLUDEDIR))
install-files:
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 0755 $(BUILD_DIR)/libcertmagic.so $(DESTDIR)$(LIBDIR)/libcertmagic.so.$(VERSION)
	ln -sf libcertmagic.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libcertmagic.so.$(SOMAJOR)
	ln -sf libcertmagic.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libcertmagic.so
	install -m 0644 $(BUILD_DIR)/libcertmagic.a $(DESTDIR)$(LIBDIR)/libcertmagic.a
	# The archive keeps the standard library's line tables (the shared library is stripped by
	# the release profile; an archive is not linked, so only strip can).
	strip --strip-debug $(DESTDIR)$(LIBDIR)/libcertmagic.a
	install -m 0644 include/certmagic.h $(DESTDIR)$(INCLUDEDIR)/certmagic.h
	sed -e 's|@PREFIX@|$(PC_PREFIX)|; s|@LIBDIR@|$(PC_LIBDIR)|; s|@INCLUDEDIR@|$(PC_INCLUDEDIR)|; s|@VERSION@|$(VERSION)|' \
		ffi/certmagic.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/certmagic.pc

## Everything a release publishes for x86_64 Linux, in dist/: the abi3 manylinux wheel and the
## sdist, the npm packages (certmagic and certmagic-linux-x64-gnu), the C release tarball, the
## core crate; sizes checked against their budgets. See packaging/dist.sh.
dist: deps
	bash packaging/dist.sh

## The packages of dist/ installed as users install them, in fresh folders without Rust on PATH,
## each obtaining from Pebble and serving a verified handshake (tests/dist/run.py).
test-dist: deps
	$(CARGO) build -q -p certmagic-testsupport --bin pebble-env
	python3 tests/dist/run.py

## cargo check of core and ffi for every other installed Rust target (rustup target add ...).
check-targets:
	bash packaging/check-targets.sh

## Installs into a scratch prefix and builds a C program with pkg-config against it.
install-check:
	d=$$(mktemp -d) && $(MAKE) --no-print-directory install PREFIX=$$d && \
	printf '#include <certmagic.h>\n#include <stdio.h>\n#include <string.h>\nint main(void) { printf("libcertmagic %%s\\n", certmagic_version()); return strcmp(certmagic_version(), CERTMAGIC_VERSION) != 0; }\n' > $$d/v.c && \
	cc -std=c99 -Wall -Werror $$d/v.c $$(PKG_CONFIG_PATH=$$d/lib/pkgconfig pkg-config --cflags --libs certmagic) -Wl,-rpath,$$d/lib -o $$d/v && \
	$$d/v && readelf -d $$d/lib/libcertmagic.so | grep -q 'soname: \[libcertmagic.so.$(SOMAJOR)\]' && \
	echo "install-check: OK ($$d)" && rm -rf $$d
