package main

// `gunicorn-proxy healthcheck`: the container image's HEALTHCHECK, which
// has no curl and no shell. It reads the same environment as the proxy it
// checks (Docker runs health checks with the container's environment) and
// asks that proxy:
//
//   - with ADMIN_LISTEN set (the image sets 127.0.0.1:9100): GET /healthz,
//     or /readyz with --ready, healthy on 200;
//   - without: a connection to LISTEN (and a TLS handshake if the proxy
//     serves HTTPS), closed at once. That proves the proxy accepts, not
//     that it answers, and it is how the check stays out of the access log
//     and away from the app: a request to LISTEN would be forwarded.
//
// It exits 0 when healthy and 1 when not, never 2: Docker reserves 2.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// healthcheckTimeout bounds the whole check, below the image's
// HEALTHCHECK --timeout so that the command reports why rather than being
// killed.
const healthcheckTimeout = 3 * time.Second

const (
	healthy   = 0
	unhealthy = 1
)

func healthcheck(args, environ []string, stdout, stderr io.Writer) int {
	path := "/healthz"
	for _, a := range args {
		switch a {
		case "--ready", "-ready":
			path = "/readyz"
		default:
			fmt.Fprintf(stderr, "gunicorn-proxy healthcheck: unknown argument %q (usage: gunicorn-proxy healthcheck [--ready])\n", a)
			return unhealthy
		}
	}
	cfg := loadConfigOrSay(environ, stderr, "gunicorn-proxy healthcheck:")
	if cfg == nil {
		return unhealthy
	}
	ctx, cancel := context.WithTimeout(context.Background(), healthcheckTimeout)
	defer cancel()
	if cfg.AdminListen.address != "" {
		return askAdmin(ctx, cfg.AdminListen, path, stdout, stderr)
	}
	if path == "/readyz" {
		fmt.Fprintln(stderr, "gunicorn-proxy healthcheck: --ready needs ADMIN_LISTEN (the proxy's /readyz)")
		return unhealthy
	}
	return dialListener(ctx, cfg, stdout, stderr)
}

// askAdmin asks the admin listener for path.
func askAdmin(ctx context.Context, a listenAddr, path string, stdout, stderr io.Writer) int {
	network, address := a.network, loopback(a.address)
	url, shown := "http://"+address+path, "http://"+address+path
	if network == "unix" {
		url, shown = "http://localhost"+path, "unix:"+address+" "+path
	}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return new(net.Dialer).DialContext(ctx, network, address)
		},
		DisableKeepAlives: true,
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "gunicorn-proxy healthcheck:", err)
		return unhealthy
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "gunicorn-proxy healthcheck: ADMIN_LISTEN=%s: %v\n", a, err)
		return unhealthy
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	answer := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "gunicorn-proxy healthcheck: %s: %d %s\n", shown, resp.StatusCode, answer)
		return unhealthy
	}
	fmt.Fprintf(stdout, "%s: %s\n", shown, answer)
	return healthy
}

// dialListener connects to the proxy's own listener and hangs up.
func dialListener(ctx context.Context, cfg *config, stdout, stderr io.Writer) int {
	a := cfg.listenAddress()
	address := a.address
	if a.network == "tcp" {
		address = loopback(address)
	}
	c, err := new(net.Dialer).DialContext(ctx, a.network, address)
	if err != nil {
		fmt.Fprintf(stderr, "gunicorn-proxy healthcheck: %s: %v\n", a, err)
		return unhealthy
	}
	defer c.Close()
	if cfg.SSLKey != "" || bool(cfg.AutoSSL) {
		// This checks that our own process completes a handshake, not
		// who it is: any certificate will do.
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // see above
		if err := tc.HandshakeContext(ctx); err != nil {
			fmt.Fprintf(stderr, "gunicorn-proxy healthcheck: %s: TLS handshake: %v\n", a, err)
			return unhealthy
		}
	}
	fmt.Fprintf(stdout, "%s accepts connections (set ADMIN_LISTEN for /healthz)\n", a)
	return healthy
}

// loopback turns a listening address into one to connect to: a wildcard
// host (":9100", "0.0.0.0:9100", "[::]:9100") means this machine.
func loopback(address string) string {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return address
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
