package main

// examples/compose without Docker: its app under Debian's gunicorn with its
// gunicorn.conf.py, and the proxy with its proxy.env, as compose.yaml wires
// them.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const composeDir = "../../examples/compose"

// readEnvFile reads a compose env_file: VAR=value lines, # comments.
func readEnvFile(t testing.TB, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if !strings.Contains(line, "=") {
			t.Fatalf("%s: not VAR=value: %q", path, line)
		}
		env = append(env, line)
	}
	return env
}

func TestComposeExample(t *testing.T) {
	compose, err := os.ReadFile(filepath.Join(composeDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(composeDir, "app/gunicorn.conf.py"))
	if err != nil {
		t.Fatal(err)
	}
	// The wiring this test stands in for.
	for _, want := range []string{`command: ["app:8000"]`, "env_file: proxy.env", `- "8000:8000"`, "read_only: true"} {
		if !strings.Contains(string(compose), want) {
			t.Errorf("compose.yaml no longer has %s: update this test with it", want)
		}
	}
	if !strings.Contains(string(conf), `bind = "0.0.0.0:8000"`) {
		t.Error(`app/gunicorn.conf.py does not bind 0.0.0.0:8000, where compose.yaml points the proxy`)
	}

	// The app, as its Dockerfile runs it; only the address differs.
	appDir, _ := filepath.Abs(filepath.Join(composeDir, "app"))
	bind := freeAddr(t)
	app := start(t, appDir, append(os.Environ(), "WEB_CONCURRENCY=2"), gunicornPath,
		"-c", "gunicorn.conf.py", "--bind", bind, "app:app")
	waitListening(t, app, bind)

	// The proxy with proxy.env; the admin port is a free one here.
	admin := freeAddr(t)
	var env []string
	for _, kv := range readEnvFile(t, filepath.Join(composeDir, "proxy.env")) {
		if strings.HasPrefix(kv, "ADMIN_LISTEN=") {
			kv = "ADMIN_LISTEN=" + admin
		}
		env = append(env, kv)
	}
	p := startProxy(t, bind, env...)

	resp, body := get(t, p.url("/"), "Host", "shop.example")
	var seen struct {
		URL, Client, Login string
	}
	if err := json.Unmarshal(body, &seen); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if seen.URL != "https://shop.example/" || seen.Login != "https://shop.example/login" || seen.Client != "127.0.0.1" {
		t.Errorf("the app saw %+v", seen)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains" {
		t.Errorf("Strict-Transport-Security %q", got)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", resp.Header.Get("X-Content-Type-Options"))
	}
	eventually(t, "the access log line on stdout", func() bool {
		return strings.Contains(p.stdout.String(), `"uri":"/","status":"200"`)
	})
	if code, out, errOut := healthcheckCmd(t, env); code != 0 {
		t.Errorf("healthcheck: %d %s %s", code, out, errOut)
	}
	if n := scrapeMetrics(t, admin)[`gunicorn_proxy_requests_total{code="2xx",method="GET"}`]; n != 1 {
		t.Errorf("requests counted: %v", n)
	}
}
