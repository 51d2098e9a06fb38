package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var logFields = []string{"ip", "method", "uri", "status", "processing_time", "request_time", "request_size", "time"}

// parseLogLine checks one access-log line: a JSON object with exactly the
// old image's fields, in order, every value a string.
func parseLogLine(t testing.TB, line string) map[string]string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %q", line)
	}
	fields := map[string]string{}
	for i := 0; dec.More(); i++ {
		key, _ := dec.Token()
		value, err := dec.Token()
		s, ok := value.(string)
		if err != nil || !ok || i >= len(logFields) || key != logFields[i] {
			t.Fatalf("field %d of %q: %v=%v (%v)", i, line, key, value, err)
		}
		fields[key.(string)] = s
	}
	if len(fields) != len(logFields) {
		t.Fatalf("%d fields in %q", len(fields), line)
	}
	return fields
}

func readLines(t testing.TB, paths ...string) []string {
	t.Helper()
	var lines []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("%s ends in the middle of a line", p)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
	}
	return lines
}

// logrotate renames the file and sends SIGUSR1 while requests keep coming:
// every request is logged once, in one file or the other, and no line is
// split between them. Then SIGTERM: what was served is all on disk.
func TestAccessLogRotationAndShutdown(t *testing.T) {
	g := startGunicorn(t, 2, "")
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	p := startProxy(t, g.bind, "LOG="+logPath)

	const total = 400
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if resp, _ := get(t, p.url(fmt.Sprintf("/echo?n=%d", i))); resp.StatusCode != 200 {
					t.Errorf("request %d: %d", i, resp.StatusCode)
				}
			}
		}()
	}
	for i := 0; i < total; i++ {
		if i == total/2 {
			if err := os.Rename(logPath, logPath+".1"); err != nil {
				t.Fatal(err)
			}
			p.signal(syscall.SIGUSR1)
		}
		next <- i
	}
	close(next)
	wg.Wait()
	p.signal(syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "access log reopened") {
		t.Errorf("no reopen on SIGUSR1:\n%s", p.stderr)
	}

	before, after := readLines(t, logPath+".1"), readLines(t, logPath)
	if len(before) == 0 || len(after) == 0 {
		t.Errorf("rotation did not split the log: %d lines before, %d after", len(before), len(after))
	}
	seen := map[string]int{}
	for _, line := range append(before, after...) {
		f := parseLogLine(t, line)
		seen[f["uri"]]++
		if f["ip"] != "127.0.0.1" || f["method"] != "GET" || f["status"] != "200" || f["processing_time"] == "-" {
			t.Errorf("line %q", line)
		}
	}
	for i := 0; i < total; i++ {
		if n := seen[fmt.Sprintf("/echo?n=%d", i)]; n != 1 {
			t.Errorf("request %d logged %d times", i, n)
		}
	}
}

func TestAccessLogFields(t *testing.T) {
	g := startGunicorn(t, 2, "")
	logPath := filepath.Join(t.TempDir(), "access.log")
	p := startProxy(t, g.bind, "LOG="+logPath, "MAX_BODY_SIZE=10")
	get(t, p.url("/sleep/0.2?x=\"q\""))
	rawRequest(t, p.addr, "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n")
	p.signal(syscall.SIGTERM)
	p.wait(t, 15*time.Second)
	lines := readLines(t, logPath)
	if len(lines) != 2 {
		t.Fatalf("%d lines: %q", len(lines), lines)
	}
	slow := parseLogLine(t, lines[0])
	if slow["uri"] != `/sleep/0.2?x=%22q%22` && slow["uri"] != `/sleep/0.2?x="q"` {
		t.Errorf("uri %q", slow["uri"])
	}
	if slow["processing_time"] < "0.200" || slow["request_time"] < slow["processing_time"] ||
		!regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$`).MatchString(slow["time"]) {
		t.Errorf("timing fields %v", slow)
	}
	refused := parseLogLine(t, lines[1])
	if refused["status"] != "413" || refused["processing_time"] != "-" || refused["uri"] != "/upload" {
		t.Errorf("refused request logged as %v", refused)
	}
}

// Syslog in nginx's framing, over UDP and a unix datagram socket.
func TestAccessLogSyslog(t *testing.T) {
	g := startGunicorn(t, 1, "")
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	sock := filepath.Join(t.TempDir(), "log.sock")
	unixgram, err := net.ListenPacket("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer unixgram.Close()
	hostname, _ := os.Hostname()
	tests := []struct {
		log     string
		conn    net.PacketConn
		pattern string
	}{
		{"syslog:server=" + udp.LocalAddr().String() + ",tag=shop", udp,
			`^<190>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ` + regexp.QuoteMeta(hostname) + ` shop: (\{.*\})$`},
		{"syslog:server=unix:" + sock + ",facility=local0,severity=notice,nohostname", unixgram,
			`^<133>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d gunicorn_proxy: (\{.*\})$`},
	}
	for _, tt := range tests {
		t.Run(tt.log, func(t *testing.T) {
			p := startProxy(t, g.bind, "LOG="+tt.log)
			get(t, p.url("/pid"))
			tt.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 64<<10)
			n, _, err := tt.conn.ReadFrom(buf)
			if err != nil {
				t.Fatalf("no datagram: %v\n%s", err, p.stderr)
			}
			m := regexp.MustCompile(tt.pattern).FindSubmatch(buf[:n])
			if m == nil {
				t.Fatalf("datagram %q does not match %s", buf[:n], tt.pattern)
			}
			if f := parseLogLine(t, string(m[1])); f["uri"] != "/pid" {
				t.Errorf("logged %v", f)
			}
		})
	}
}

// A syslog server that is not there loses lines, never requests.
func TestAccessLogSyslogDown(t *testing.T) {
	g := startGunicorn(t, 1, "")
	p := startProxy(t, g.bind, "LOG=syslog:server=unix:/nonexistent/log.sock")
	for i := 0; i < 20; i++ {
		if resp, _ := get(t, p.url("/pid")); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	eventually(t, "the dropped lines reported", func() bool { return strings.Contains(p.stderr.String(), "dropped") })
}
