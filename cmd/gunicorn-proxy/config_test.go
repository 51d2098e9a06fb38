package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"512", 512, true},
		{"64k", 64 << 10, true},
		{"64K", 64 << 10, true},
		{"1m", 1 << 20, true},
		{"10M", 10 << 20, true},
		{"1g", 1 << 30, true},
		{" 2G ", 2 << 30, true},
		{"", 0, false},
		{"k", 0, false},
		{"1.5m", 0, false},
		{"-1", 0, false},
		{"1t", 0, false},
		{"1mb", 0, false},
		{"99999999999999999999", 0, false},
		{"9999999999999g", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5s", 5 * time.Second, true},
		{"1m30s", 90 * time.Second, true},
		{"500ms", 500 * time.Millisecond, true},
		{"65", 65 * time.Second, true},
		{"0.5", 500 * time.Millisecond, true},
		{"0", 0, true},
		{"", 0, false},
		{"5 seconds", 0, false},
		{"-5s", 0, false},
		{"-1", 0, false},
		{"1e300", 0, false},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseUpstream(t *testing.T) {
	tests := []struct {
		in, network, address string
		ok                   bool
	}{
		{"app:8080", "tcp", "app:8080", true},
		{"127.0.0.1:8080", "tcp", "127.0.0.1:8080", true},
		{"http://app:8080", "tcp", "app:8080", true},
		{"HTTP://app:8080/", "tcp", "app:8080", true},
		{"http://app", "tcp", "app:80", true},
		{"[::1]:8080", "tcp", "[::1]:8080", true},
		{"http://[::1]", "tcp", "[::1]:80", true},
		{"unix:/run/gunicorn.sock", "unix", "/run/gunicorn.sock", true},
		{"unix:run/gunicorn.sock", "", "", false},
		{"app", "", "", false},
		{"https://app:8443", "", "", false},
		{"http://app:8080/prefix", "", "", false},
		{"app:http", "", "", false},
		{"app:0", "", "", false},
		{":8080", "", "", false},
		{"", "", "", false},
		{"http://0[0", "", "", false}, // found by FuzzParseUpstream
		{"http://[::1", "", "", false},
		{"http://a]", "", "", false},
		{"http://[]", "", "", false},
	}
	for _, tt := range tests {
		got, err := parseUpstream(tt.in)
		if (err == nil) != tt.ok || got.Network != tt.network || got.Address != tt.address {
			t.Errorf("parseUpstream(%q) = %+v, %v; want %s %s ok=%v", tt.in, got, err, tt.network, tt.address, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "expected host:port") {
			t.Errorf("parseUpstream(%q) error %q does not say what was expected", tt.in, err)
		}
	}
}

func TestParseListen(t *testing.T) {
	tests := []struct {
		in, network, address string
		ok                   bool
	}{
		{":8000", "tcp", ":8000", true},
		{"0.0.0.0:8000", "tcp", "0.0.0.0:8000", true},
		{"[::]:8000", "tcp", "[::]:8000", true},
		{"localhost:8000", "tcp", "localhost:8000", true},
		{"unix:/run/proxy.sock", "unix", "/run/proxy.sock", true},
		{"8000", "", "", false},
		{":http", "", "", false},
		{":70000", "", "", false},
		{"unix:relative.sock", "", "", false},
	}
	for _, tt := range tests {
		network, address, err := parseListen(tt.in)
		if (err == nil) != tt.ok || network != tt.network || address != tt.address {
			t.Errorf("parseListen(%q) = %s %s %v; want %s %s ok=%v", tt.in, network, address, err, tt.network, tt.address, tt.ok)
		}
	}
}

func TestParseTrustedProxies(t *testing.T) {
	tests := []struct {
		in   string
		want string // the prefixes, joined
		ok   bool
	}{
		{"10.0.0.0/8,172.16.0.0/12", "10.0.0.0/8 172.16.0.0/12", true},
		{" 10.1.2.3/8 , ::1 ", "10.0.0.0/8 ::1/128", true},
		{"192.168.1.10", "192.168.1.10/32", true},
		{"none", "", true},
		{"NONE", "", true},
		{"", "", false},
		{",", "", false},
		{"10.0.0.0/33", "", false},
		{"example.com", "", false},
	}
	for _, tt := range tests {
		got, err := parseTrustedProxies(tt.in)
		var parts []string
		for _, p := range got {
			parts = append(parts, p.String())
		}
		if (err == nil) != tt.ok || strings.Join(parts, " ") != tt.want {
			t.Errorf("parseTrustedProxies(%q) = %v, %v; want %q ok=%v", tt.in, parts, err, tt.want, tt.ok)
		}
	}
}

func TestParseHeaders(t *testing.T) {
	got, err := parseHeaders(map[string]string{
		"HEADER_STRICT_TRANSPORT_SECURITY": "max-age=31536000; includeSubDomains",
		"HEADER_X_FRAME_OPTIONS":           "DENY",
		"PATH":                             "/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, h := range got {
		lines = append(lines, string(h.Name)+": "+string(h.Value))
	}
	want := "Strict-Transport-Security: max-age=31536000; includeSubDomains|X-Frame-Options: DENY"
	if strings.Join(lines, "|") != want {
		t.Errorf("got %q, want %q", strings.Join(lines, "|"), want)
	}

	for _, bad := range []map[string]string{
		{"HEADER_": "x"},
		{"HEADER_X_": "x"},
		{"HEADER_A(B": "x"},
		{"HEADER_X": "line\nbreak"},
		{"HEADER_X": "  "},
	} {
		if _, err := parseHeaders(bad); err == nil {
			t.Errorf("parseHeaders(%v) accepted", bad)
		}
	}
}

// A bad value stops the start with one line naming the variable, the value
// and what was expected.
func TestConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"MAX_CONNECTIONS=lots", `MAX_CONNECTIONS="lots": expected a whole number of at least 1`},
		{"MAX_CONNECTIONS=0", `MAX_CONNECTIONS="0": expected a whole number of at least 1`},
		{"MAX_BODY_SIZE=1mb", `MAX_BODY_SIZE="1mb": expected a size`},
		{"CLIENT_BODY_TIMEOUT=soon", `CLIENT_BODY_TIMEOUT="soon": expected a duration`},
		{"PROXY_READ_TIMEOUT=-1s", `PROXY_READ_TIMEOUT="-1s": expected a duration`},
		{"SCHEME=ftp", `SCHEME="ftp": expected http or https`},
		{"LISTEN=8000", `LISTEN="8000": expected host:port, :port or unix:/path/to.sock`},
		{"PORT=99999", `PORT="99999": expected a port number`},
		{"TRUSTED_PROXIES=10.0.0.0/8,bogus", `TRUSTED_PROXIES="10.0.0.0/8,bogus": expected a comma-separated list`},
		{"SSL_KEY=/k.pem", `SSL_KEY="/k.pem": expected SSL_CRT to be set as well`},
		{"SSL_CRT=/c.pem", `SSL_CRT="/c.pem": expected SSL_KEY to be set as well`},
		{"HEADER_X_=1", `HEADER_X_="1": expected a variable name that makes a header name`},
		{"COMPRESS=maybe", `COMPRESS="maybe": expected on or off`},
		{"COMPRESS_LEVEL=10", `COMPRESS_LEVEL="10": expected a gzip level from 1 (fastest) to 9 (smallest)`},
		{"COMPRESS_MIN_LENGTH=-1", `COMPRESS_MIN_LENGTH="-1": expected a length in bytes`},
		{"COMPRESS_TYPES=json", `COMPRESS_TYPES="json": expected media types separated by commas`},
		{"RATE_LIMIT=10r", `RATE_LIMIT="10r": expected a rate such as 10r/s or 600r/m`},
		{"RATE_LIMIT=0r/s", `RATE_LIMIT="0r/s": expected a rate such as 10r/s or 600r/m`},
		{"RATE_LIMIT_BURST=-1", `RATE_LIMIT_BURST="-1": expected a whole number of requests, 0 or more`},
		{"RATE_LIMIT_STATUS=200", `RATE_LIMIT_STATUS="200": expected a status from 400 to 599, such as 503 or 429`},
		{"RATE_LIMIT_SIZE=1k", `RATE_LIMIT_SIZE="1k": expected a size of at least 32k`},
		{"BUFFER_DIR=/nonexistent/spool", `BUFFER_DIR="/nonexistent/spool": expected a directory where the proxy can create files`},
	}
	for _, tt := range tests {
		_, errs := loadConfig([]string{tt.env})
		if len(errs) != 1 {
			t.Errorf("%s: got %d errors %v, want 1", tt.env, len(errs), errs)
			continue
		}
		if msg := errs[0].Error(); !strings.HasPrefix(msg, tt.want) || strings.Contains(msg, "\n") {
			t.Errorf("%s:\n got %q\nwant %q…", tt.env, msg, tt.want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, errs := loadConfig(nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if cfg.MaxConnections != 10000 || cfg.MaxBodySize != 1<<20 || cfg.KeepaliveTimeout != duration(65*time.Second) ||
		cfg.ClientHeaderTimeout != duration(5*time.Second) || cfg.ProxyReadTimeout != duration(60*time.Second) ||
		len(cfg.TrustedProxies) != 4 || cfg.AutoSSL || cfg.Scheme != "" {
		t.Errorf("defaults: %+v", cfg)
	}
	if a := cfg.listenAddress(); a.network != "tcp" || a.address != ":8000" {
		t.Errorf("default listen %+v", a)
	}
	// Compression on as the old image (gzip level 5, 256 bytes); rate
	// limiting off, with nginx's 503 and the old image's 10m zone ready.
	if !bool(cfg.Compress) || cfg.CompressLevel != 5 || cfg.CompressMinLength != 256 || cfg.CompressTypes != nil ||
		cfg.RateLimit != 0 || cfg.RateLimitBurst != 0 || bool(cfg.RateLimitNoDelay) || cfg.RateLimitStatus != 503 ||
		cfg.RateLimitSize != 10<<20 || len(cfg.notes) != 0 {
		t.Errorf("compression and rate-limit defaults: %+v", cfg)
	}
	cfg, _ = loadConfig([]string{"PORT=5000"})
	if a := cfg.listenAddress(); a.address != ":5000" {
		t.Errorf("PORT=5000 listens on %+v", a)
	}
	cfg, _ = loadConfig([]string{"PORT=5000", "LISTEN=127.0.0.1:9000"})
	if a := cfg.listenAddress(); a.address != "127.0.0.1:9000" {
		t.Errorf("LISTEN and PORT: listens on %+v, want LISTEN", a)
	}
	for v, want := range map[string]bool{"1": true, "yes": true, "true": true, "0": false, "false": false, "off": false, "": false} {
		cfg, _ := loadConfig([]string{"AUTO_SSL=" + v})
		if bool(cfg.AutoSSL) != want {
			t.Errorf("AUTO_SSL=%q → %v", v, cfg.AutoSSL)
		}
	}
}

// Every variable the configuration reads appears in --help, with a default.
func TestHelpListsEveryVariable(t *testing.T) {
	var out strings.Builder
	printHelp(&out)
	for _, key := range envKeys() {
		if key != "" && !strings.Contains(out.String(), "  "+key+" ") {
			t.Errorf("--help does not list %s", key)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "1m", "64k", "1g", "9999999999g", " 1 ", "k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"5s", "65", "0.5", "1h2m", "-1", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("parseDuration(%q) = %v", s, d)
		}
	})
}

func FuzzParseUpstream(f *testing.F) {
	for _, s := range []string{"app:8080", "http://app", "unix:/a.sock", "[::1]:1", "https://x", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseUpstream(s)
		if err != nil {
			return
		}
		switch u.Network {
		case "unix":
			if !strings.HasPrefix(u.Address, "/") {
				t.Fatalf("%q: unix path %q", s, u.Address)
			}
		case "tcp":
			if _, _, err := parseListen(u.Address); err != nil && !strings.HasPrefix(u.Address, "[") {
				t.Fatalf("%q gave an address %q that is not host:port: %v", s, u.Address, err)
			}
		default:
			t.Fatalf("%q: network %q", s, u.Network)
		}
	})
}

func FuzzParseTrustedProxies(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "none", "::1,1.2.3.4", ",", "1.2.3.4/99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list, err := parseTrustedProxies(s)
		for _, p := range list {
			if !p.IsValid() {
				t.Fatalf("%q gave invalid prefix %v", s, p)
			}
		}
		_ = err
	})
}

func TestAdminListen(t *testing.T) {
	tests := []struct {
		env     []string
		network string
		address string
		err     string
	}{
		{nil, "", "", ""},
		{[]string{"ADMIN_LISTEN=127.0.0.1:9100"}, "tcp", "127.0.0.1:9100", ""},
		{[]string{"ADMIN_LISTEN=:9100"}, "tcp", ":9100", ""},
		{[]string{"ADMIN_LISTEN=unix:/run/gunicorn-proxy/admin.sock"}, "unix", "/run/gunicorn-proxy/admin.sock", ""},
		{[]string{"ADMIN_LISTEN=9100"}, "", "", `ADMIN_LISTEN="9100": expected host:port`},
		{[]string{"ADMIN_LISTEN=:8000"}, "", "", `ADMIN_LISTEN=":8000": expected an address other than the proxy's own`},
		{[]string{"PORT=9100", "ADMIN_LISTEN=:9100"}, "", "", `ADMIN_LISTEN=":9100": expected an address other than the proxy's own`},
	}
	for _, tt := range tests {
		cfg, errs := loadConfig(tt.env)
		switch {
		case tt.err != "":
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), tt.err) {
				t.Errorf("%v: errors %v, want %q", tt.env, errs, tt.err)
			}
		case len(errs) > 0:
			t.Errorf("%v: %v", tt.env, errs)
		case cfg.AdminListen.network != tt.network || cfg.AdminListen.address != tt.address:
			t.Errorf("%v: %+v", tt.env, cfg.AdminListen)
		}
	}
}

func TestLoopback(t *testing.T) {
	for in, want := range map[string]string{
		":9100":          "127.0.0.1:9100",
		"0.0.0.0:9100":   "127.0.0.1:9100",
		"[::]:9100":      "[::1]:9100",
		"10.0.0.5:9100":  "10.0.0.5:9100",
		"localhost:9100": "localhost:9100",
	} {
		if got := loopback(in); got != want {
			t.Errorf("loopback(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseCompressionAndRateLimit(t *testing.T) {
	for v, want := range map[string]bool{"on": true, "ON": true, "1": true, "true": true, "yes": true, "off": false, " Off ": false, "0": false, "false": false, "no": false} {
		if got, err := parseOnOff(v); err != nil || got != want {
			t.Errorf("parseOnOff(%q) = %v, %v", v, got, err)
		}
	}
	for _, v := range []string{"", "enabled", "2", "onn"} {
		if _, err := parseOnOff(v); err == nil {
			t.Errorf("parseOnOff(%q) accepted", v)
		}
	}
	ints := []struct {
		name  string
		parse func(string) (int, error)
		good  map[string]int
		bad   []string
	}{
		{"COMPRESS_LEVEL", parseCompressLevel, map[string]int{"1": 1, " 9 ": 9, "5": 5}, []string{"0", "10", "", "5.0", "fast"}},
		{"COMPRESS_MIN_LENGTH", parseMinLength, map[string]int{"0": 0, "256": 256, "1k": 1024, "1m": 1 << 20}, []string{"-1", "", "1kb", "2g"}},
		{"RATE_LIMIT_BURST", parseBurst, map[string]int{"0": 0, "5": 5, "1000000": 1000000}, []string{"-1", "", "1000001", "5r", "1.5"}},
		{"RATE_LIMIT_STATUS", parseStatus, map[string]int{"503": 503, "429": 429, "400": 400, "599": 599, " 444 ": 444}, []string{"200", "399", "600", "", "too-many"}},
	}
	for _, tt := range ints {
		for v, want := range tt.good {
			if got, err := tt.parse(v); err != nil || got != want {
				t.Errorf("%s %q = %d, %v; want %d", tt.name, v, got, err, want)
			}
		}
		for _, v := range tt.bad {
			if got, err := tt.parse(v); err == nil {
				t.Errorf("%s %q accepted as %d", tt.name, v, got)
			}
		}
	}
	for v, want := range map[string]int64{"32k": 32 << 10, "10m": 10 << 20, "1g": 1 << 30, "40000": 40000} {
		if got, err := parseZoneSize(v); err != nil || got != want {
			t.Errorf("parseZoneSize(%q) = %d, %v", v, got, err)
		}
	}
	for _, v := range []string{"0", "1k", "32767", "", "10mb", "65g"} {
		if _, err := parseZoneSize(v); err == nil {
			t.Errorf("parseZoneSize(%q) accepted", v)
		}
	}
	cfg, errs := loadConfig([]string{"COMPRESS_TYPES=text/*, application/json", "RATE_LIMIT=600r/m", "RATE_LIMIT_BURST=5", "RATE_LIMIT_NODELAY=yes", "RATE_LIMIT_STATUS=429", "RATE_LIMIT_SIZE=1m"})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if strings.Join(cfg.CompressTypes, " ") != "text/* application/json" || cfg.RateLimit != 10000 || cfg.RateLimitBurst != 5 ||
		!cfg.RateLimitNoDelay || cfg.RateLimitStatus != 429 || cfg.RateLimitSize != 1<<20 {
		t.Errorf("parsed %+v", cfg)
	}
}

// Settings that cannot take effect are not errors (the old image ignored
// them) but are named at start.
func TestConfigNotes(t *testing.T) {
	cfg, errs := loadConfig([]string{"RATE_LIMIT_BURST=5", "COMPRESS=off", "COMPRESS_LEVEL=9"})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := "RATE_LIMIT_BURST is set but RATE_LIMIT is not: no rate limit applies|COMPRESS_LEVEL is set but COMPRESS=off: nothing is compressed"
	if got := strings.Join(cfg.notes, "|"); got != want {
		t.Errorf("notes %q\nwant  %q", got, want)
	}
	cfg, _ = loadConfig([]string{"RATE_LIMIT=1r/s", "RATE_LIMIT_BURST=5", "COMPRESS_LEVEL=9"})
	if len(cfg.notes) != 0 {
		t.Errorf("notes %q", cfg.notes)
	}
}

// FuzzConfigCompressionAndRateLimit sets each new variable to arbitrary
// text: the configuration either loads with values in range or names the
// variable in one line, never panics.
func FuzzConfigCompressionAndRateLimit(f *testing.F) {
	for _, s := range []string{"on", "5", "256", "1k", "text/*,application/json", "10r/s", "600r/m", "10r", "503", "10m", "", "-1", "*"} {
		f.Add(s)
	}
	names := []string{"COMPRESS", "COMPRESS_LEVEL", "COMPRESS_MIN_LENGTH", "COMPRESS_TYPES", "RATE_LIMIT", "RATE_LIMIT_BURST", "RATE_LIMIT_NODELAY", "RATE_LIMIT_STATUS", "RATE_LIMIT_SIZE"}
	f.Fuzz(func(t *testing.T, v string) {
		for _, name := range names {
			cfg, errs := loadConfig([]string{name + "=" + v})
			for _, err := range errs {
				if msg := err.Error(); !strings.HasPrefix(msg, name+"=") || strings.Contains(msg, "\n") {
					t.Fatalf("%s=%q: error %q", name, v, msg)
				}
			}
			if len(errs) > 0 {
				continue
			}
			if cfg.CompressLevel < 1 || cfg.CompressLevel > 9 || cfg.CompressMinLength < 0 || cfg.RateLimit < 0 ||
				cfg.RateLimitBurst < 0 || cfg.RateLimitStatus < 400 || cfg.RateLimitStatus > 599 || cfg.RateLimitSize < minZoneSize {
				t.Fatalf("%s=%q loaded out of range: %+v", name, v, cfg)
			}
		}
	})
}
