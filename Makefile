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
# Go 1.26's fuzzing coordinator can report its own -fuzztime deadline as a
# failure, "context deadline exceeded" with no failing input, on a busy
# machine (go.dev/issue/75804, fixed in Go 1.27): such a run is tried once
# more; a run that found an input fails at once.
fuzz:
	@set -e; out=$$(mktemp); trap 'rm -f $$out' EXIT; \
	for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    for try in 1 2; do \
	      echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
	      if $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg >$$out 2>&1; then cat $$out; break; fi; \
	      cat $$out; \
	      if [ $$try = 2 ] || grep -q 'Failing input written' $$out || ! grep -qx '    context deadline exceeded' $$out; then exit 1; fi; \
	      echo "fuzz: $$target: the -fuzztime deadline reported as a failure, no failing input (go.dev/issue/75804): once more"; \
	    done; \
	  done; \
	done

# The proxy in front of the sample Flask app under gunicorn, on :8000.
demo:
	./examples/demo.sh

# gunicorn-proxy against nginx and HAProxy (about 20 minutes).
bench:
	$(GO) run ./bench
