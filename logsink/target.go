package logsink

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// targetKind says where lines go.
type targetKind int

const (
	toStdout targetKind = iota
	toFile
	toSyslog
)

// target is a parsed LOG value.
type target struct {
	kind targetKind
	path string // toFile
	sys  syslogTarget
}

// syslogTarget is the parsed "syslog:" form, with nginx's defaults filled in.
type syslogTarget struct {
	network    string // "udp" or "unixgram"
	addr       string // host:port, or a socket path
	facility   int
	severity   int
	tag        string
	noHostname bool
}

// pri is RFC 3164's PRI value: facility*8 + severity.
func (t syslogTarget) pri() int { return t.facility*8 + t.severity }

// nginx's names, in code order: a facility's or severity's code is its index.
var (
	facilities = []string{
		"kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news",
		"uucp", "clock", "authpriv", "ftp", "ntp", "audit", "alert", "cron",
		"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
	}
	severities = []string{"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"}
)

// Defaults are nginx's, except the tag, which names this proxy as the old
// image's did.
const (
	defaultFacility   = 23 // local7
	defaultSeverity   = 6  // info
	defaultTag        = "gunicorn_proxy"
	defaultSyslogPort = "514"
	maxTagLen         = 32 // nginx's limit
)

// parseTarget reads a LOG value: "stdout", "syslog:…" in nginx's syntax, or
// anything else as a file path. Errors say what was expected, without the
// variable name: the caller prefixes LOG="…".
func parseTarget(s string) (target, error) {
	switch {
	case s == "":
		return target{}, errors.New(`expected "stdout", a file path or "syslog:server=ADDRESS[,…]"`)
	case s == "stdout":
		return target{kind: toStdout}, nil
	case strings.HasPrefix(s, "syslog:"):
		sys, err := parseSyslog(strings.TrimPrefix(s, "syslog:"))
		if err != nil {
			return target{}, fmt.Errorf("syslog: %w", err)
		}
		return target{kind: toSyslog, sys: sys}, nil
	default:
		return target{kind: toFile, path: s}, nil
	}
}

func parseSyslog(params string) (syslogTarget, error) {
	t := syslogTarget{facility: defaultFacility, severity: defaultSeverity, tag: defaultTag}
	seen := map[string]bool{}
	for _, p := range strings.Split(params, ",") {
		name, value, hasValue := strings.Cut(p, "=")
		if name == "" {
			return t, fmt.Errorf("empty parameter in %q; expected name=value pairs separated by commas, e.g. server=127.0.0.1:514", params)
		}
		if seen[name] {
			return t, fmt.Errorf("parameter %q given twice", name)
		}
		seen[name] = true
		if name == "nohostname" {
			if hasValue {
				return t, errors.New(`nohostname takes no value`)
			}
			t.noHostname = true
			continue
		}
		if !hasValue {
			switch name {
			case "server", "facility", "severity", "tag":
				return t, fmt.Errorf("parameter %q needs a value (%s=…)", name, name)
			}
		}
		var err error
		switch name {
		case "server":
			t.network, t.addr, err = parseSyslogServer(value)
		case "facility":
			t.facility, err = lookupName("facility", value, facilities,
				"kern, user, mail, daemon, auth, intern, lpr, news, uucp, clock, authpriv, ftp, ntp, audit, alert, cron, local0…local7")
		case "severity":
			t.severity, err = lookupName("severity", value, severities, strings.Join(severities, ", "))
		case "tag":
			if !validTag(value) {
				err = fmt.Errorf("tag %q: expected 1 to %d letters, digits or underscores", value, maxTagLen)
			}
			t.tag = value
		default:
			err = fmt.Errorf("unknown parameter %q; expected server, facility, severity, tag or nohostname", name)
		}
		if err != nil {
			return t, err
		}
	}
	if t.addr == "" {
		return t, errors.New("missing server=ADDRESS (host, host:port, [ipv6]:port or unix:/path)")
	}
	return t, nil
}

func lookupName(what, value string, names []string, expected string) (int, error) {
	for code, n := range names {
		if n == value {
			return code, nil
		}
	}
	return 0, fmt.Errorf("%s %q: expected one of %s", what, value, expected)
}

// validTag follows nginx, which accepts only what cannot break RFC 3164
// framing or a syslog daemon's program-name parsing.
func validTag(s string) bool {
	if s == "" || len(s) > maxTagLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// parseSyslogServer accepts nginx's forms: unix:/path, host, host:port,
// [ipv6] and [ipv6]:port; the port defaults to 514 and the transport is UDP.
func parseSyslogServer(v string) (network, addr string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("server %q: %s; expected host, host:port, [ipv6]:port or unix:/path", v, why)
	}
	if path, ok := strings.CutPrefix(v, "unix:"); ok {
		if path == "" {
			return bad("empty socket path")
		}
		return "unixgram", path, nil
	}
	if v == "" {
		return bad("empty address")
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		// No port: a bare host or a bracketed IPv6 address.
		host, port = v, defaultSyslogPort
		if inner, ok := strings.CutPrefix(v, "["); ok && strings.HasSuffix(inner, "]") {
			host = strings.TrimSuffix(inner, "]")
			if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
				return bad("not an IPv6 address in brackets")
			}
		} else if strings.ContainsAny(v, "[]:") {
			// An unbracketed IPv6 address is ambiguous ("fe80::1:514"):
			// nginx wants brackets too.
			return bad("malformed address (IPv6 needs brackets: [::1]:514)")
		}
	}
	if host == "" {
		return bad("empty host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return bad(fmt.Sprintf("port %q is not 1–65535", port))
	}
	return "udp", net.JoinHostPort(host, port), nil
}
