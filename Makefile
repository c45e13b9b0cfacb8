# certmagic-rs. On a fresh machine: `make demo` (see it work) and `make test` (prove it).
SHELL := /bin/bash
CARGO ?= cargo
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Real servers the tests and the demo start on 127.0.0.1, from Debian.
APT_PACKAGES := pebble caddy curl

.PHONY: demo test lint fmt bench deps

## Install what is missing (Debian packages).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "==> installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

## Start a local ACME CA, obtain a real certificate (HTTP-01), serve HTTPS with it, curl it.
demo: deps
	$(CARGO) run --quiet -p certmagic --example demo

## Every test of every language, plus format and lint checks.
test: deps lint
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Criterion benchmarks with figures (BENCH_CERTS=20000 for a quicker run).
bench: deps
	$(CARGO) bench -p certmagic
