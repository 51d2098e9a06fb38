package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Slow and abusive clients, with slowhttptest (Debian's package): slow
// headers (Slowloris), a slow body (R-U-Dead-Yet) and a slow reader, 50
// connections each. Meanwhile normal requests keep being answered, and the
// attackers are cut off by CLIENT_HEADER_TIMEOUT, CLIENT_BODY_TIMEOUT and
// SEND_TIMEOUT. The latency of the normal requests is reported, not
// asserted: this machine's timing is not a test's business.
func TestSlowClients(t *testing.T) {
	if _, err := exec.LookPath("slowhttptest"); err != nil {
		t.Fatal("slowhttptest is not installed: apt-get install slowhttptest")
	}
	g := startGunicorn(t, 2, "")
	p := startProxy(t, g.bind, "CLIENT_HEADER_TIMEOUT=2", "CLIENT_BODY_TIMEOUT=2", "SEND_TIMEOUT=2")
	modes := []struct {
		name    string
		seconds int
		cutBy   string // what the proxy logs when it cuts one off; "": see TestSlowReaderIsReset
		args    []string
	}{
		{"slow headers", 8, "client too slow", []string{"-H", "-i", "3", "-u", p.url("/pid")}},
		{"slow body", 8, "client too slow", []string{"-B", "-i", "3", "-s", "8192", "-u", p.url("/")}},
		// 8 MiB is more than the kernel's socket buffers hold, so the
		// proxy's writes block and SEND_TIMEOUT can end them.
		// How many slow readers are cut within the run depends on how fast
		// this machine fills their sockets; the cut itself is proven by
		// TestSlowReaderIsReset.
		{"slow read", 12, "", []string{"-X", "-n", "1", "-z", "32", "-w", "1", "-y", "64", "-k", "1", "-u", p.url("/big/8")}},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			prefix := filepath.Join(t.TempDir(), "stats")
			args := append([]string{"-c", "50", "-r", "50", "-l", strconv.Itoa(mode.seconds), "-p", "3", "-g", "-o", prefix}, mode.args...)
			attack := start(t, t.TempDir(), os.Environ(), "slowhttptest", args...)

			latencies, failures := normalTraffic(t, p, time.Duration(mode.seconds-1)*time.Second)
			attack.wait(t, 60*time.Second)

			if len(failures) > 0 {
				t.Errorf("%d of %d normal requests failed during the attack: %q\n%s", len(failures), len(latencies), failures, p.stderr)
			}
			if readSlowHTTPStats(t, prefix+".csv") {
				t.Errorf("slowhttptest found the service unavailable:\n%s", attack.stdout)
			}
			// slowhttptest's own count of closed connections misses those
			// reset while it was not reading; the proxy's log does not.
			cut := countLogged(p.stderr.String(), "stopped reading for SEND_TIMEOUT")
			if mode.cutBy != "" {
				cut = countLogged(p.stderr.String(), mode.cutBy)
				if cut == 0 {
					t.Errorf("no attacking connection was cut off:\n%s", p.stderr)
				}
			}
			p.stderr.reset()
			t.Logf("%s: %d normal requests, p50 %v, p99 %v; %d attacking connections cut off",
				mode.name, len(latencies), percentile(latencies, 50), percentile(latencies, 99), cut)
		})
	}
}

// normalTraffic sends GETs on a few keep-alive connections for d and
// returns their latencies and how many failed.
func normalTraffic(t *testing.T, p *proxyProcess, d time.Duration) ([]time.Duration, []string) {
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  []string
		wg        sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client()
			for time.Now().Before(deadline) {
				start := time.Now()
				resp, err := c.Get(p.url("/pid"))
				failure := ""
				switch {
				case err != nil:
					failure = err.Error()
				case resp.StatusCode != 200:
					failure = resp.Status
				}
				if err == nil {
					resp.Body.Close()
				}
				mu.Lock()
				latencies = append(latencies, time.Since(start))
				if failure != "" {
					failures = append(failures, failure)
				}
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	return latencies, failures
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}

// countLogged counts the proxy's error-log events containing what, the
// "(and N more like this)" that rate limiting folds into a line included.
func countLogged(log, what string) int {
	n := 0
	more := regexp.MustCompile(`\(and (\d+) more like this\)`)
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, what) {
			continue
		}
		n++
		if m := more.FindStringSubmatch(line); m != nil {
			k, _ := strconv.Atoi(m[1])
			n += k
		}
	}
	return n
}

// readSlowHTTPStats reads slowhttptest's CSV (seconds, closed, pending,
// connected, service available) and reports whether the service was ever
// unavailable to its probe.
func readSlowHTTPStats(t *testing.T, path string) (unavailable bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("slowhttptest wrote no statistics: %v", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("statistics %s: %v (%d rows)", path, err, len(rows))
	}
	for _, row := range rows[1:] {
		if len(row) < 5 {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(row[4])); err == nil && n == 0 {
			unavailable = true
		}
	}
	return unavailable
}

// A client that stops reading a large answer is reset once SEND_TIMEOUT
// passes without progress: its connection, and the megabytes queued to it,
// do not linger.
func TestSlowReaderIsReset(t *testing.T) {
	g := startGunicorn(t, 2, "")
	p := startProxy(t, g.bind, "SEND_TIMEOUT=1")
	const readers = 10
	results := make(chan error, readers)
	for i := 0; i < readers; i++ {
		go func() {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				results <- err
				return
			}
			defer c.Close()
			c.(*net.TCPConn).SetReadBuffer(4 << 10)
			io.WriteString(c, "GET /big/16 HTTP/1.1\r\nHost: h\r\n\r\n")
			time.Sleep(5 * time.Second) // read nothing: the proxy's writes block
			// Then drain: a reset connection ends early, with an error.
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			n, err := io.Copy(io.Discard, c)
			if err == nil && n >= 16<<20 {
				err = fmt.Errorf("read the whole answer (%d bytes): not cut off", n)
			} else {
				err = nil
			}
			results <- err
		}()
	}
	for i := 0; i < readers; i++ {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(p.stderr.String(), "stopped reading for SEND_TIMEOUT=1s: connection reset") {
		t.Errorf("the resets are not in the error log:\n%s", p.stderr)
	}
}
