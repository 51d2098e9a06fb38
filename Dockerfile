# A static binary on distroless: no shell, no libc, a non-root user.
# docker run -p 8000:8000 -e SCHEME=https gunicorn-proxy app:8080
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
    -o /out/gunicorn-proxy ./cmd/gunicorn-proxy

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gunicorn-proxy /gunicorn-proxy
USER nonroot:nonroot
EXPOSE 8000
ENTRYPOINT ["/gunicorn-proxy"]
