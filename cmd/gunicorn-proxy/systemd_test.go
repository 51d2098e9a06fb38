package main

// systemd: Type=notify against a fake NOTIFY_SOCKET, and socket activation
// by Debian's systemd-socket-activate, which passes sockets exactly as
// systemd does (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES).

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifySocket is a fake systemd: the datagrams sent to NOTIFY_SOCKET.
type notifySocket struct {
	path string
	msgs chan string
	conn *net.UnixConn
}

func listenNotify(t testing.TB) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: path, msgs: make(chan string, 64), conn: conn}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return n
}

// next is the next state sent; it fails after 20 s without one.
func (n *notifySocket) next(t testing.TB) string {
	t.Helper()
	select {
	case m := <-n.msgs:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("nothing sent to NOTIFY_SOCKET")
		return ""
	}
}

func TestSystemdNotify(t *testing.T) {
	app := startHeldApp(t)
	notify := listenNotify(t)
	admin := freeAddr(t)
	p := startProxy(t, app.addr, "NOTIFY_SOCKET="+notify.path, "ADMIN_LISTEN="+admin)

	ready := notify.next(t)
	if !strings.HasPrefix(ready, "READY=1\n") || !strings.Contains(ready, "STATUS=listening on "+p.addr) {
		t.Errorf("first state %q, want READY=1 with a STATUS", ready)
	}

	// SIGHUP: RELOADING=1 with its timestamp, then READY=1 again.
	p.signal(syscall.SIGHUP)
	if m := notify.next(t); !strings.HasPrefix(m, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("on SIGHUP: %q", m)
	}
	if m := notify.next(t); !strings.HasPrefix(m, "READY=1\n") {
		t.Errorf("after the reload: %q", m)
	}

	// SIGTERM with a request in flight: STOPPING=1 comes first, while
	// the request is still held at the app, and /readyz turns 503.
	held := make(chan int, 1)
	go func() {
		status, _ := exchange(t, p.addr, "GET /hold HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		held <- status
	}()
	<-app.arrived
	p.signal(syscall.SIGTERM)
	if m := notify.next(t); !strings.HasPrefix(m, "STOPPING=1\n") {
		t.Errorf("on SIGTERM: %q", m)
	}
	select {
	case status := <-held:
		t.Fatalf("the request in flight ended (%d) before it was released", status)
	default:
	}
	eventually(t, "/readyz to turn 503", func() bool {
		resp, body := get(t, "http://"+admin+"/readyz")
		return resp.StatusCode == 503 && string(body) == "shutting down\n"
	})
	if resp, _ := get(t, "http://"+admin+"/healthz"); resp.StatusCode != 200 {
		t.Errorf("/healthz while draining: %d", resp.StatusCode)
	}
	close(app.release)
	if status := <-held; status != 200 {
		t.Errorf("the request in flight: %d", status)
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, p.stderr)
	}
	select {
	case m, ok := <-notify.msgs:
		if ok {
			t.Errorf("sent after STOPPING=1: %q", m)
		}
	default:
	}
}

func socketActivate(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Fatalf("systemd-socket-activate is not installed (%v): apt-get install systemd", err)
	}
	return path
}

// The sockets systemd passes are served, all of them, and LISTEN is not bound.
func TestSocketActivation(t *testing.T) {
	g := startGunicorn(t, 2, "")
	tcpAddr := freeAddr(t)
	unixPath := filepath.Join(t.TempDir(), "proxy.sock")
	ignored := freeAddr(t)
	ssa := start(t, t.TempDir(), []string{"PATH=/usr/bin:/bin"}, socketActivate(t),
		"-l", tcpAddr, "-l", unixPath, "-E", "LISTEN="+ignored, "--", binary, g.bind)
	// systemd-socket-activate starts the proxy on the first connection,
	// as a .socket unit does.
	waitListening(t, ssa, tcpAddr)

	if resp, body := get(t, "http://"+tcpAddr+"/"); resp.StatusCode != 200 || decodeSeen(t, body).Method != "GET" {
		t.Errorf("over TCP: %d %s", resp.StatusCode, body)
	}
	overUnix := client()
	overUnix.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return new(net.Dialer).DialContext(ctx, "unix", unixPath)
	}}
	resp, err := overUnix.Get("http://app.example/")
	if err != nil {
		t.Fatalf("over the unix socket: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("over the unix socket: %d", resp.StatusCode)
	}
	eventually(t, "the startup lines", func() bool {
		s := ssa.stderr.String()
		return strings.Contains(s, "LISTEN="+ignored+" ignored: serving the 2 socket(s) systemd passed") &&
			strings.Contains(s, "listening on "+tcpAddr+", unix:"+unixPath+" from systemd")
	})
	if c, err := net.Dial("tcp", ignored); err == nil {
		c.Close()
		t.Errorf("LISTEN=%s was bound as well", ignored)
	}
	ssa.signal(syscall.SIGTERM)
	if code := ssa.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, ssa.stderr)
	}
}

// LISTEN_FDS meant for another process (inherited through a wrapper that
// did not exec) is ignored, as sd_listen_fds(3) ignores it.
func TestSocketActivationForAnotherProcess(t *testing.T) {
	g := startGunicorn(t, 1, "")
	p := startProxy(t, g.bind, "LISTEN_FDS=1", "LISTEN_PID=1")
	if resp, _ := get(t, p.url("/")); resp.StatusCode != 200 {
		t.Errorf("%d", resp.StatusCode)
	}
	if !strings.Contains(p.stderr.String(), `LISTEN_FDS=1 is for process "1", not this one`) {
		t.Errorf("stderr:\n%s", p.stderr)
	}
}

// A datagram socket (ListenDatagram=) cannot carry HTTP: the start fails
// and says so.
func TestSocketActivationOfADatagramSocket(t *testing.T) {
	addr := freeAddr(t)
	ssa := start(t, t.TempDir(), []string{"PATH=/usr/bin:/bin"}, socketActivate(t),
		"--datagram", "-l", addr, "--", binary, "127.0.0.1:9")
	eventually(t, "the proxy started", func() bool {
		if c, err := net.Dial("udp", addr); err == nil {
			c.Write([]byte("wake up"))
			c.Close()
		}
		return strings.Contains(ssa.stderr.String(), "Execing")
	})
	if code := ssa.wait(t, 20*time.Second); code != 1 || !strings.Contains(ssa.stderr.String(), "is not a listening stream socket (ListenStream=)") {
		t.Errorf("exit %d; stderr:\n%s", code, ssa.stderr)
	}
}

// deploy/systemd's units load without a warning: systemd-analyze verify
// reports unknown or misspelt settings, bad values and a missing binary.
func TestSystemdUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is not installed (%v): apt-get install systemd", err)
	}
	dir := t.TempDir()
	var units []string
	for _, name := range []string{"gunicorn-proxy.socket", "gunicorn-proxy.service"} {
		raw, err := os.ReadFile(filepath.Join("../../deploy/systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		// The binary under test stands in for the installed one.
		text := strings.ReplaceAll(string(raw), "ExecStart=/usr/local/bin/gunicorn-proxy ", "ExecStart="+binary+" ")
		if name == "gunicorn-proxy.service" && text == string(raw) {
			t.Fatal("gunicorn-proxy.service: no ExecStart=/usr/local/bin/gunicorn-proxy to check")
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, path)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, units...)...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
