# weft build and test entry points. `make test` is the one command that runs
# every test (unit, fuzz seed corpora, race detector, and the root-only
# interop scenarios when run as root); .ci/run calls it.
GO ?= go
# ip and nft live in /usr/sbin, which non-login root shells may lack.
export PATH := $(PATH):/usr/sbin:/sbin

# Root-only packages: network namespaces and the official Tailscale binaries.
INTEROP_PKGS := ./interop/... ./internal/nettest/...

.PHONY: test deps unit vet build interop

build:
	$(GO) build ./...

vet:
	$(GO) vet ./...

# WEFT_INTEROP=0: the root-only tests wait for the interop pass, so they run
# once; their non-root unit tests still run here.
unit:
	WEFT_INTEROP=0 $(GO) test -race -count=1 ./...

# As root: install missing tools (iproute2, nftables, ...), nothing otherwise.
deps:
	@bash .ci/deps.sh

# WEFT_INTEROP=1 makes a missing precondition a failure, never a silent skip.
# The first step installs official tailscale into the cache (2-5 minutes the
# first time) with its progress shown live; the scenarios then reuse it.
interop:
	@if [ "$$(id -u)" = 0 ]; then \
		WEFT_INTEROP=1 $(GO) test -count=1 -timeout 15m -v -run '^TestInstallTailscale$$' ./interop && \
		WEFT_INTEROP=1 $(GO) test -race -count=1 -timeout 20m $(INTEROP_PKGS); \
	else \
		echo "interop: SKIPPED: not root; run 'make test' as root to run the namespace scenarios against official tailscale"; \
	fi

test: deps vet unit interop
