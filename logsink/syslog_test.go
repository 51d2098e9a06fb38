package logsink

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type datagram struct {
	pri  int
	host string // "" with nohostname
	tag  string
	msg  map[string]string
}

// parseDatagram reads RFC 3164 framing as nginx sends it:
// "<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG", HOSTNAME omitted with nohostname.
func parseDatagram(t *testing.T, d []byte, withHost bool) datagram {
	t.Helper()
	var g datagram
	end := bytes.IndexByte(d, '>')
	if len(d) == 0 || d[0] != '<' || end < 2 {
		t.Fatalf("no <PRI>: %q", d)
	}
	pri, err := strconv.Atoi(string(d[1:end]))
	if err != nil {
		t.Fatalf("PRI %q: %v", d[1:end], err)
	}
	g.pri = pri
	rest := d[end+1:]
	if len(rest) < len(time.Stamp)+1 || rest[len(time.Stamp)] != ' ' {
		t.Fatalf("no timestamp: %q", d)
	}
	if _, err := time.Parse(time.Stamp, string(rest[:len(time.Stamp)])); err != nil {
		t.Fatalf("timestamp %q: %v", rest[:len(time.Stamp)], err)
	}
	rest = rest[len(time.Stamp)+1:]
	if withHost {
		sp := bytes.IndexByte(rest, ' ')
		if sp <= 0 {
			t.Fatalf("no hostname: %q", d)
		}
		g.host, rest = string(rest[:sp]), rest[sp+1:]
	}
	colon := bytes.Index(rest, []byte(": "))
	if colon <= 0 {
		t.Fatalf("no tag: %q", d)
	}
	g.tag, rest = string(rest[:colon]), rest[colon+2:]
	g.msg = checkLine(t, append(bytes.Clone(rest), '\n'))
	return g
}

func wantHostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(h)
}

func readDatagram(t *testing.T, c net.PacketConn) []byte {
	t.Helper()
	buf := make([]byte, 65536)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("reading a datagram: %v", err)
	}
	return buf[:n]
}

func TestSyslogUDP(t *testing.T) {
	host := wantHostname(t)
	tests := []struct {
		name     string
		params   string
		pri      int
		withHost bool
		tag      string
	}{
		{"nginx defaults", "", 23*8 + 6, true, "gunicorn_proxy"},
		{"facility severity tag", ",facility=local3,severity=warn,tag=web_1", 19*8 + 4, true, "web_1"},
		{"nohostname", ",nohostname,facility=user,severity=debug", 1*8 + 7, false, "gunicorn_proxy"},
		{"kern emerg", ",facility=kern,severity=emerg", 0, true, "gunicorn_proxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var report syncBuffer
			s, err := Open("syslog:server="+ln.LocalAddr().String()+tt.params, Options{Report: &report})
			if err != nil {
				t.Fatal(err)
			}
			rec := typical()
			for i := range 3 {
				rec.URI = []byte("/udp/" + strconv.Itoa(i) + "?q=\"\xff\n")
				s.Log(&rec)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				g := parseDatagram(t, readDatagram(t, ln), tt.withHost)
				if g.pri != tt.pri || g.tag != tt.tag {
					t.Errorf("PRI %d tag %q, want %d %q", g.pri, g.tag, tt.pri, tt.tag)
				}
				if tt.withHost && g.host != host {
					t.Errorf("hostname %q, want %q", g.host, host)
				}
				if want := "/udp/" + strconv.Itoa(i) + "?q=\"\u00ff\n"; g.msg["uri"] != want {
					t.Errorf("uri %q, want %q", g.msg["uri"], want)
				}
			}
			if s.Dropped() != 0 || report.String() != "" {
				t.Errorf("dropped %d, report %q", s.Dropped(), report.String())
			}
		})
	}
}

// keepLogging logs a line every few milliseconds until stopped, the way
// traffic keeps flowing while a syslog server is away.
func keepLogging(s *Sink) (stop func()) {
	var wg sync.WaitGroup
	var quit atomic.Bool
	wg.Go(func() {
		rec := typical()
		for i := 0; !quit.Load(); i++ {
			rec.URI = []byte("/n/" + strconv.Itoa(i))
			s.Log(&rec)
			time.Sleep(5 * time.Millisecond)
		}
	})
	return func() { quit.Store(true); wg.Wait() }
}

func TestSyslogUDPServerDown(t *testing.T) {
	// A port with nobody behind it: the kernel answers port unreachable.
	probe, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.LocalAddr().String()
	probe.Close()

	var report syncBuffer
	s, err := Open("syslog:server="+addr, Options{Report: &report, FlushInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var slowest atomic.Int64
	logMany(s, 2, 2000, nil, &slowest)
	if d := time.Duration(slowest.Load()); d > 2*time.Second {
		t.Errorf("a Log call took %v with the syslog server down", d)
	}
	stop := keepLogging(s)
	defer stop()
	eventually(t, "lines counted as dropped", func() bool { return s.Dropped() > 0 })
	eventually(t, "a report naming the error", func() bool { return strings.Contains(report.String(), "connection refused") })

	// The server comes back on the same port: lines flow again.
	ln, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("port %s taken meanwhile: %v", addr, err)
	}
	defer ln.Close()
	parseDatagram(t, readDatagram(t, ln), true)
	if err := s.Reopen(); err != nil {
		t.Fatal(err)
	}
	parseDatagram(t, readDatagram(t, ln), true)
	t.Logf("report:\n%s", report.String())
}

func TestSyslogUnixgram(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log.sock")
	var report syncBuffer
	// Opened before the syslog daemon is up: not an error.
	s, err := Open("syslog:server=unix:"+sock+",tag=app,facility=local0", Options{Report: &report, FlushInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.Contains(report.String(), "no such file or directory") {
		t.Errorf("no startup warning about the missing socket: %q", report.String())
	}
	stop := keepLogging(s)
	defer stop()
	eventually(t, "lines dropped while the socket is missing", func() bool { return s.Dropped() > 0 })

	host := wantHostname(t)
	check := func(ln net.PacketConn) {
		t.Helper()
		g := parseDatagram(t, readDatagram(t, ln), true)
		if g.pri != 16*8+6 || g.tag != "app" || g.host != host {
			t.Errorf("PRI %d tag %q host %q, want 134 \"app\" %q", g.pri, g.tag, g.host, host)
		}
	}
	// The daemon starts: lines arrive without a restart of the proxy.
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	check(ln)

	// The daemon restarts (a new socket at the same path): lines arrive
	// at the new one.
	ln.Close()
	os.Remove(sock)
	ln, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	check(ln)
	stop()
	t.Logf("%d dropped; report:\n%s", s.Dropped(), report.String())
}

// TestSyslogUnixgramReceiverStuck is a local syslog daemon that hangs: its
// socket queue fills and sends would block. The writer gives up on a batch
// after syslogWriteTimeout, and requests never wait.
func TestSyslogUnixgramReceiverStuck(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // never read
	var report syncBuffer
	s, err := Open("syslog:server=unix:"+sock, Options{Report: &report, QueueBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var slowest atomic.Int64
	logMany(s, 2, 20000, nil, &slowest)
	if d := time.Duration(slowest.Load()); d > 2*time.Second {
		t.Errorf("a Log call took %v with the syslog daemon stuck", d)
	}
	eventually(t, "a report of the timeout", func() bool { return strings.Contains(report.String(), "i/o timeout") })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Dropped() == 0 {
		t.Error("nothing dropped although the receiver never reads")
	}
	t.Logf("%d dropped; report:\n%s", s.Dropped(), report.String())
}
