module github.com/gunicorn-proxy/gunicorn-proxy

go 1.26.8

require (
	github.com/VictoriaMetrics/metrics v1.45.0
	github.com/caarlos0/env/v10 v10.0.0
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/goccy/go-json v0.10.5
	github.com/gorilla/websocket v1.5.3
	github.com/klauspost/compress v1.20.3
	github.com/molecule-man/go-brrr v1.3.1
	github.com/valyala/bytebufferpool v1.0.0
	github.com/valyala/fasthttp v1.78.0
	github.com/youmark/pkcs8 v0.0.0-20240726163527-a2c0da244d78
	golang.org/x/sys v0.49.0
)

require (
	github.com/valyala/fastrand v1.1.0 // indirect
	github.com/valyala/histogram v1.2.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
)
