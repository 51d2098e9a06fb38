# The commands a developer needs. `make test` is what CI runs.

GO       ?= go
FUZZTIME ?= 10s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build test fuzz demo bench

# The static binary, as the Dockerfile builds it.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o gunicorn-proxy ./cmd/gunicorn-proxy

# Everything: vet, all tests with the race detector (the integration tests
# start a real gunicorn and the real binary), then each fuzz target briefly.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz

# Every native fuzz target, FUZZTIME each (longer: make fuzz FUZZTIME=5m).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# The proxy in front of the sample Flask app under gunicorn, on :8000.
demo:
	./examples/demo.sh

# gunicorn-proxy against nginx and HAProxy (about 20 minutes).
bench:
	$(GO) run ./bench
