# weft build and test entry points. `make test` is the one command that runs
# every test (unit, fuzz seed corpora, race detector, and the root-only
# interop scenarios when run as root); .ci/run calls it.
GO ?= go

.PHONY: test unit vet build

build:
	$(GO) build ./...

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...

test: vet unit
