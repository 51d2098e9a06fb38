package main

// systemd: Type=notify and socket activation. Both do nothing outside
// systemd: without NOTIFY_SOCKET no state is sent, and without LISTEN_FDS
// the proxy binds LISTEN itself.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// notify tells systemd the proxy's state (sd_notify(3)): READY=1 once it
// listens, RELOADING=1 and READY=1 around a SIGHUP reload, STOPPING=1 as
// soon as it starts draining, each with a STATUS= line for systemctl status.
func (p *process) notify(state, status string) {
	if status != "" {
		state += "\nSTATUS=" + status
	}
	if _, err := daemon.SdNotify(false, state); err != nil {
		fmt.Fprintf(p.stderr, "gunicorn-proxy: NOTIFY_SOCKET: could not tell systemd %s: %v\n", firstLine(state), err)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// reloading is RELOADING=1 with the timestamp systemd (≥ 253, for
// Type=notify-reload) requires beside it.
func reloading() string {
	return daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec()
}

// activatedListeners returns the listening sockets systemd passed (a
// .socket unit, or systemd-socket-activate), or none when it passed none.
// note is a line for stderr about what was decided, if any.
func activatedListeners(vars map[string]string) (listeners []net.Listener, note string, err error) {
	fds, ok := vars["LISTEN_FDS"]
	if !ok {
		return nil, "", nil
	}
	// As sd_listen_fds(3): the variables are for the process systemd
	// started, not for a child that inherited them.
	if pid := vars["LISTEN_PID"]; pid != strconv.Itoa(os.Getpid()) {
		return nil, fmt.Sprintf("LISTEN_FDS=%s is for process %q, not this one (%d): ignored", fds, pid, os.Getpid()), nil
	}
	files := activation.Files(true) // and unset LISTEN_*, so children do not take them
	if len(files) == 0 {
		return nil, "", fmt.Errorf("LISTEN_FDS=%q: expected the number of sockets systemd passed", fds)
	}
	for _, f := range files {
		ln, err := net.FileListener(f)
		f.Close() // FileListener made its own copy of the descriptor
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return nil, "", fmt.Errorf("LISTEN_FDS: socket %s is not a listening stream socket (ListenStream=): %w", f.Name(), err)
		}
		listeners = append(listeners, ln)
	}
	return listeners, "", nil
}

// mergeListeners serves several listeners as one: systemd may pass more than
// one socket (ListenStream= for IPv4 and IPv6, or TCP and a unix socket), and
// one proxy.Server, with one MAX_CONNECTIONS, serves them all.
func mergeListeners(ls []net.Listener) net.Listener {
	if len(ls) == 1 {
		return ls[0]
	}
	m := &multiListener{listeners: ls, accepted: make(chan accepted), closed: make(chan struct{})}
	for _, l := range ls {
		go m.acceptLoop(l)
	}
	return m
}

type multiListener struct {
	listeners []net.Listener
	accepted  chan accepted
	closed    chan struct{}
	closeOnce sync.Once
}

type accepted struct {
	conn net.Conn
	err  error
}

// acceptLoop hands each connection (or error: the server decides whether
// an error is worth a retry) to Accept, until the listener is closed.
func (m *multiListener) acceptLoop(l net.Listener) {
	for {
		c, err := l.Accept()
		select {
		case m.accepted <- accepted{c, err}:
		case <-m.closed:
			if c != nil {
				c.Close()
			}
			return
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case a := <-m.accepted:
		return a.conn, a.err
	case <-m.closed:
		return nil, net.ErrClosed
	}
}

func (m *multiListener) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		for _, l := range m.listeners {
			if e := l.Close(); e != nil && err == nil {
				err = e
			}
		}
	})
	return err
}

// Addr is the first socket's; describeListeners names them all.
func (m *multiListener) Addr() net.Addr { return m.listeners[0].Addr() }

// describeListeners names sockets for the startup line: 127.0.0.1:8000,
// unix:/run/gunicorn-proxy.sock.
func describeListeners(ls []net.Listener) string {
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Addr().String()
		if l.Addr().Network() == "unix" {
			names[i] = "unix:" + names[i]
		}
	}
	return strings.Join(names, ", ")
}
