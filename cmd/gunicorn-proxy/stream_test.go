package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A Flask route that yields an event a second, under a real gunicorn:
// each event reaches the client before the app has written the next, so
// the proxy relays it as it comes. The delays are reported.
func TestStreamedAnswers(t *testing.T) {
	g := startGunicorn(t, 2, "")
	p := startProxy(t, g.bind)
	for _, path := range []string{"/events", "/unbuffered"} {
		t.Run(path, func(t *testing.T) {
			resp, err := client().Get(p.url(path))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.Header.Get("X-Accel-Buffering") != "" {
				t.Error("X-Accel-Buffering reached the client")
			}
			lines := bufio.NewScanner(resp.Body)
			var written, received []float64
			for lines.Scan() {
				fields := strings.Fields(lines.Text())
				if len(fields) != 3 {
					continue // the blank line after an event
				}
				at, _ := strconv.ParseFloat(fields[2], 64)
				written = append(written, at)
				received = append(received, float64(time.Now().UnixNano())/1e9)
			}
			if len(written) != 3 {
				t.Fatalf("got %d events", len(written))
			}
			// Causal, not timed: the first event arrived before the app
			// had even written the last one.
			if received[0] >= written[2] {
				t.Errorf("the first event arrived after the last was written: buffered")
			}
			var lags []string
			for i := range written {
				lags = append(lags, fmt.Sprintf("%.1f ms", (received[i]-written[i])*1000))
			}
			t.Logf("%s: app-to-client delay per event: %s", path, strings.Join(lags, ", "))
		})
	}
}

// WebSockets through the real binary to a real WebSocket server (Debian's
// python3-websockets): echo, large frames, server push, close from either
// side, many at once; and nothing left open afterwards.
func TestWebSocketsEndToEnd(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := runQuiet(python, "-c", "import websockets"); err != nil {
		t.Fatalf("python3-websockets is not installed (apt-get install python3-websockets): %v %s", err, out)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	wsDir, _ := filepath.Abs("../../testdata/ws")
	app := start(t, wsDir, os.Environ(), python, "server.py", port)
	waitListening(t, app, addr)
	p := startProxy(t, addr)
	fdsBefore := countFDs(t, p.cmd.Process.Pid)

	dial := func(path string) *websocket.Conn {
		t.Helper()
		c, _, err := websocket.DefaultDialer.Dial("ws://"+p.addr+path, nil)
		if err != nil {
			t.Fatalf("%s: %v\n%s", path, err, p.stderr)
		}
		return c
	}

	c := dial("/echo")
	for _, size := range []int{3, 64 << 10, 2 << 20} {
		msg := bytes.Repeat([]byte{'w'}, size)
		c.WriteMessage(websocket.BinaryMessage, msg)
		if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo of %d bytes: %d bytes, %v", size, len(got), err)
		}
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("close from the client: %v", err)
	}
	c.Close()

	c = dial("/push")
	for i := 0; i < 3; i++ {
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != fmt.Sprintf("push %d", i) {
			t.Fatalf("push %d: %q %v", i, msg, err)
		}
	}
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("close from the app: %v", err)
	}
	c.Close()

	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, _, err := websocket.DefaultDialer.Dial("ws://"+p.addr+"/echo", nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for j := 0; j < 10; j++ {
				msg := fmt.Sprintf("%d/%d", i, j)
				c.WriteMessage(websocket.TextMessage, []byte(msg))
				if _, got, err := c.ReadMessage(); err != nil || string(got) != msg {
					t.Errorf("%s: %q %v", msg, got, err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	eventually(t, "the proxy's descriptors back where they were", func() bool {
		return countFDs(t, p.cmd.Process.Pid) <= fdsBefore
	})
}

func countFDs(t testing.TB, pid int) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func runQuiet(name string, args ...string) ([]byte, error) {
	return execCommand(name, args...).CombinedOutput()
}

var execCommand = exec.Command
