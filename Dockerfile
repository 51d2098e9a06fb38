# gunicorn-proxy as a container beside the app, a drop-in for luhn/gunicorn-proxy:
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t gunicorn-proxy .
#   docker run -p 8000:8000 -e SCHEME=https gunicorn-proxy app:8080
#
# cmd/gunicorn-proxy/image_test.go reads this file: it builds the binary with
# the flags of the `go build` line below and runs it the way this image does
# (user 65532, an empty read-only working directory, no shell, only /tmp
# writable, the ENV lines below), then runs the HEALTHCHECK command. Keep
# `go build` on one RUN line.

# Build on the builder's own platform and cross-compile: no emulation for
# linux/arm64 images (docker buildx build --platform linux/amd64,linux/arm64).
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH=amd64
# Static (no cgo, so no libc), reproducible (-trimpath), stripped (-s -w).
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/gunicorn-proxy ./cmd/gunicorn-proxy

# distroless/static: CA certificates, tzdata, /etc/passwd with nonroot
# (65532), /tmp; no shell, no package manager, about 2 MB.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gunicorn-proxy /gunicorn-proxy
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# The admin listener, on the container's loopback only: HEALTHCHECK asks its
# /healthz, and nothing outside the container reaches it. Set
# ADMIN_LISTEN=:9100 to let Prometheus scrape /metrics, or ADMIN_LISTEN= to
# turn it off (the health check then only connects to the proxy's port).
ENV ADMIN_LISTEN=127.0.0.1:9100
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 CMD ["/gunicorn-proxy", "healthcheck"]
ENTRYPOINT ["/gunicorn-proxy"]
