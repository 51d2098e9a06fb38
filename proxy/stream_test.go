package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/valyala/fasthttp"
)

// An event stream reaches the client event by event: the app sends the
// second event only after the client has received the first, which no
// buffering proxy could deliver.
func TestEventStreamIsRelayedAsItComes(t *testing.T) {
	for _, tt := range []struct {
		name, header string
	}{
		{"text/event-stream", "Content-Type: text/event-stream\r\n"},
		{"X-Accel-Buffering: no", "Content-Type: application/json\r\nX-Accel-Buffering: no\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			next := make(chan struct{})
			app := startScriptedApp(t, func(c net.Conn, br *bufio.Reader, a *scriptedApp) {
				if _, ok := a.readRequest(br); !ok {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\n"+tt.header+"Transfer-Encoding: chunked\r\n\r\n")
				for i := 0; i < 3; i++ {
					event := fmt.Sprintf("data: %d\n\n", i)
					fmt.Fprintf(c, "%x\r\n%s\r\n", len(event), event)
					<-next // the client has it
				}
				io.WriteString(c, "0\r\n\r\n")
			})
			p := startProxy(t, testConfig(app.upstream()))
			c := p.dial(t, "203.0.113.7")
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET /events HTTP/1.1\r\nHost: h\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Header.Get("X-Accel-Buffering") != "" {
				t.Error("X-Accel-Buffering reached the client")
			}
			events := bufio.NewReader(resp.Body)
			for i := 0; i < 3; i++ {
				line, err := events.ReadString('\n')
				if err != nil || line != fmt.Sprintf("data: %d\n", i) {
					t.Fatalf("event %d: %q %v", i, line, err)
				}
				events.ReadString('\n')
				next <- struct{}{}
			}
			if rest, err := io.ReadAll(events); err != nil || len(rest) != 0 {
				t.Errorf("after the events: %q %v", rest, err)
			}
		})
	}
}

// X-Accel-Buffering: yes keeps even an event stream buffered; an ordinary
// answer is buffered as always.
func TestBufferedUnlessAsked(t *testing.T) {
	for _, h := range []string{"Content-Type: text/event-stream\r\nX-Accel-Buffering: yes\r\n", "Content-Type: text/plain\r\n"} {
		if wantsStreaming(responseHeader(t, "HTTP/1.1 200 OK\r\n"+h+"\r\n")) {
			t.Errorf("%q streams", h)
		}
	}
	if !wantsStreaming(responseHeader(t, "HTTP/1.1 200 OK\r\nx-accel-buffering: NO\r\n\r\n")) {
		t.Error("x-accel-buffering: NO does not stream")
	}
}

func responseHeader(t *testing.T, raw string) *fasthttp.ResponseHeader {
	t.Helper()
	var h fasthttp.ResponseHeader
	h.DisableNormalizing()
	if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	return &h
}

// wsApp is a WebSocket app: /echo echoes, /push sends three messages and
// closes, /close closes at once.
func wsApp(t *testing.T) Upstream {
	t.Helper()
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, http.Header{"X-App": {"ws"}})
		if err != nil {
			return
		}
		defer c.Close()
		for {
			kind, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(kind, msg) != nil {
				return
			}
		}
	})
	mux.HandleFunc("/push", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for i := 0; i < 3; i++ {
			c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("push %d", i)))
		}
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	})
	mux.HandleFunc("/refuse", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no websockets here", http.StatusForbidden)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return Upstream{Network: "tcp", Address: ln.Addr().String()}
}

func wsDial(t *testing.T, p *testProxy, path string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{NetDial: func(string, string) (net.Conn, error) {
		return p.ln.DialWithLocalAddr(&net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 40000})
	}, HandshakeTimeout: 5 * time.Second}
	return d.Dial("ws://example.com"+path, nil)
}

func TestWebSocket(t *testing.T) {
	cfg := testConfig(wsApp(t))
	cfg.WebSocketIdleTimeout = time.Hour
	p := startProxy(t, cfg)

	t.Run("echo, large frames", func(t *testing.T) {
		c, resp, err := wsDial(t, p, "/echo")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if resp.Header.Get("X-App") != "ws" {
			t.Errorf("the app's handshake headers were lost: %v", resp.Header)
		}
		for _, size := range []int{5, 70 << 10, 1 << 20} {
			msg := pattern(size)
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.ReadMessage()
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("%d bytes: echo %d bytes, %v", size, len(got), err)
			}
		}
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Errorf("closing from the client: %v", err)
		}
	})

	t.Run("server push and close from the app", func(t *testing.T) {
		c, _, err := wsDial(t, p, "/push")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := 0; i < 3; i++ {
			if _, msg, err := c.ReadMessage(); err != nil || string(msg) != fmt.Sprintf("push %d", i) {
				t.Fatalf("push %d: %q %v", i, msg, err)
			}
		}
		if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Errorf("close from the app: %v", err)
		}
	})

	t.Run("the app refuses", func(t *testing.T) {
		_, resp, err := wsDial(t, p, "/refuse")
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("%v %v", resp, err)
		}
	})

	t.Run("many at once", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				c, _, err := wsDial(t, p, "/echo")
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				for j := 0; j < 20; j++ {
					msg := []byte(fmt.Sprintf("%d-%d", i, j))
					c.WriteMessage(websocket.TextMessage, msg)
					if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, msg) {
						t.Errorf("socket %d message %d: %q %v", i, j, got, err)
						return
					}
				}
			}(i)
		}
		wg.Wait()
	})

	// Every tunnel is gone once its sockets closed. (Goroutines are not
	// counted: fasthttp keeps idle workers for ten seconds.)
	eventually(t, "the tunnels and connections closed", func() bool {
		s := p.srv.Stats()
		return s.WebSockets == 0 && s.OpenConnections == 0
	})
}

// A WebSocket silent both ways for WEBSOCKET_IDLE_TIMEOUT is closed; one
// where only the app talks is not idle.
func TestWebSocketIdleTimeout(t *testing.T) {
	cfg := testConfig(wsApp(t))
	cfg.WebSocketIdleTimeout = 400 * time.Millisecond
	p := startProxy(t, cfg)
	c, _, err := wsDial(t, p, "/echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 4; i++ { // active for longer than the timeout
		time.Sleep(200 * time.Millisecond)
		c.WriteMessage(websocket.TextMessage, []byte("ping"))
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatalf("closed while active: %v", err)
		}
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, _, err := c.ReadMessage(); err == nil || time.Since(start) > 4*time.Second {
		t.Errorf("an idle WebSocket was not closed: %v after %v", err, time.Since(start))
	}
}

// WebSockets count against MAX_CONNECTIONS though fasthttp has let go of
// them.
func TestWebSocketsCountAgainstMaxConnections(t *testing.T) {
	cfg := testConfig(wsApp(t))
	cfg.MaxConnections = 2
	cfg.WebSocketIdleTimeout = time.Hour
	p := startProxy(t, cfg)
	for i := 0; i < 2; i++ {
		c, _, err := wsDial(t, p, "/echo")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	eventually(t, "two tunnels open", func() bool { return p.srv.Stats().WebSockets == 2 })
	resp := readResponse(t, bufio.NewReader(p.dial(t, "203.0.113.9")), false)
	if resp.StatusCode() != 503 {
		t.Errorf("a third connection got %d, want 503", resp.StatusCode())
	}
}
