package logsink

import (
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	sys := func(network, addr string, facility, severity int, tag string, noHost bool) target {
		return target{kind: toSyslog, sys: syslogTarget{network, addr, facility, severity, tag, noHost}}
	}
	tests := []struct {
		in   string
		want target
	}{
		{"stdout", target{kind: toStdout}},
		{"/var/log/gunicorn-proxy/access.log", target{kind: toFile, path: "/var/log/gunicorn-proxy/access.log"}},
		{"access.log", target{kind: toFile, path: "access.log"}},
		{"/dev/stdout", target{kind: toFile, path: "/dev/stdout"}},
		{"syslog:server=10.0.0.5", sys("udp", "10.0.0.5:514", 23, 6, "gunicorn_proxy", false)},
		{"syslog:server=10.0.0.5:5140", sys("udp", "10.0.0.5:5140", 23, 6, "gunicorn_proxy", false)},
		{"syslog:server=logs.internal", sys("udp", "logs.internal:514", 23, 6, "gunicorn_proxy", false)},
		{"syslog:server=[2001:db8::5]", sys("udp", "[2001:db8::5]:514", 23, 6, "gunicorn_proxy", false)},
		{"syslog:server=[2001:db8::5]:601", sys("udp", "[2001:db8::5]:601", 23, 6, "gunicorn_proxy", false)},
		{"syslog:server=unix:/dev/log", sys("unixgram", "/dev/log", 23, 6, "gunicorn_proxy", false)},
		{"syslog:server=unix:/dev/log,facility=local0,severity=notice,tag=web_1,nohostname",
			sys("unixgram", "/dev/log", 16, 5, "web_1", true)},
		{"syslog:facility=kern,severity=emerg,server=127.0.0.1", sys("udp", "127.0.0.1:514", 0, 0, "gunicorn_proxy", false)},
		{"syslog:server=127.0.0.1,facility=daemon,severity=debug", sys("udp", "127.0.0.1:514", 3, 7, "gunicorn_proxy", false)},
		{"syslog:server=127.0.0.1,tag=" + strings.Repeat("x", 32), sys("udp", "127.0.0.1:514", 23, 6, strings.Repeat("x", 32), false)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTarget(tt.in)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseTargetErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // the whole message
	}{
		{"", `expected "stdout", a file path or "syslog:server=ADDRESS[,…]"`},
		{"syslog:", `syslog: empty parameter in ""; expected name=value pairs separated by commas, e.g. server=127.0.0.1:514`},
		{"syslog:server=10.0.0.5,", `syslog: empty parameter in "server=10.0.0.5,"; expected name=value pairs separated by commas, e.g. server=127.0.0.1:514`},
		{"syslog:facility=local0", `syslog: missing server=ADDRESS (host, host:port, [ipv6]:port or unix:/path)`},
		{"syslog:server=10.0.0.5,facilty=local0", `syslog: unknown parameter "facilty"; expected server, facility, severity, tag or nohostname`},
		{"syslog:server=10.0.0.5,facility=foo", `syslog: facility "foo": expected one of kern, user, mail, daemon, auth, intern, lpr, news, uucp, clock, authpriv, ftp, ntp, audit, alert, cron, local0…local7`},
		{"syslog:server=10.0.0.5,severity=warning", `syslog: severity "warning": expected one of emerg, alert, crit, error, warn, notice, info, debug`},
		{"syslog:server=10.0.0.5,tag=my-app", `syslog: tag "my-app": expected 1 to 32 letters, digits or underscores`},
		{"syslog:server=10.0.0.5,tag=" + strings.Repeat("x", 33), `syslog: tag "` + strings.Repeat("x", 33) + `": expected 1 to 32 letters, digits or underscores`},
		{"syslog:server=10.0.0.5,tag=", `syslog: tag "": expected 1 to 32 letters, digits or underscores`},
		{"syslog:server=10.0.0.5,nohostname=yes", `syslog: nohostname takes no value`},
		{"syslog:server", `syslog: parameter "server" needs a value (server=…)`},
		{"syslog:server=a,server=b", `syslog: parameter "server" given twice`},
		{"syslog:server=", `syslog: server "": empty address; expected host, host:port, [ipv6]:port or unix:/path`},
		{"syslog:server=unix:", `syslog: server "unix:": empty socket path; expected host, host:port, [ipv6]:port or unix:/path`},
		{"syslog:server=10.0.0.5:0", `syslog: server "10.0.0.5:0": port "0" is not 1–65535; expected host, host:port, [ipv6]:port or unix:/path`},
		{"syslog:server=10.0.0.5:syslog", `syslog: server "10.0.0.5:syslog": port "syslog" is not 1–65535; expected host, host:port, [ipv6]:port or unix:/path`},
		{"syslog:server=:514", `syslog: server ":514": empty host; expected host, host:port, [ipv6]:port or unix:/path`},
		{"syslog:server=2001:db8::5", `syslog: server "2001:db8::5": malformed address (IPv6 needs brackets: [::1]:514); expected host, host:port, [ipv6]:port or unix:/path`},
		{"syslog:server=[10.0.0.5]", `syslog: server "[10.0.0.5]": not an IPv6 address in brackets; expected host, host:port, [ipv6]:port or unix:/path`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := parseTarget(tt.in)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("got  %q\nwant %q", err, tt.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, in := range []string{dir + "/missing/access.log", dir, "syslog:server=x,severity=loud"} {
		if s, err := Open(in, Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%q): no error", in)
		}
	}
}
