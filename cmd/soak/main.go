// Command soak runs gunicorn-proxy in front of a real gunicorn for a while,
// with mixed traffic, while gunicorn is reloaded, has workers killed and is
// restarted; then it reports what every request got, and whether the
// proxy's file descriptors and goroutines grew.
//
//	go run ./cmd/soak -duration 10m
//
// It exits 1 if a request failed that should not have — a 502 for a GET
// because a pooled connection went stale, a hang, a truncated body — or if
// the proxy leaked. Traffic goes to 127.0.0.1 only, and it stops only the
// processes it started.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to send traffic")
	flag.DurationVar(&o.faultEvery, "fault-every", 3*time.Second, "time between two faults injected into gunicorn")
	flag.IntVar(&o.clients, "clients", 16, "concurrent clients")
	flag.StringVar(&o.proxyBin, "proxy-bin", "", "gunicorn-proxy binary (default: build ./cmd/gunicorn-proxy)")
	flag.StringVar(&o.appDir, "app", "testdata/app", "directory of the Flask app (app.py, gunicorn.conf.py)")
	o.proxyPkg = "./cmd/gunicorn-proxy"
	flag.Parse()
	report, err := run(o, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(out))
	if problems := report.problems(); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "soak: FAIL:", p)
		}
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "soak: PASS")
}

type options struct {
	duration, faultEvery       time.Duration
	clients                    int
	proxyBin, proxyPkg, appDir string
}

// Report is what the soak found.
type Report struct {
	Duration string         `json:"duration"`
	Sent     int            `json:"sent"`
	Answered int            `json:"answered"`
	Failed   map[string]int `json:"failed_by_reason"`
	// Unexpected are failures that count against the proxy: anything but
	// the 502s a crashing route or a stopped app must produce.
	Unexpected       map[string]int `json:"unexpected"`
	Faults           map[string]int `json:"faults_injected"`
	FDsBefore        int            `json:"fds_before"`
	FDsAfter         int            `json:"fds_after"`
	GoroutinesBefore int            `json:"goroutines_before"`
	GoroutinesAfter  int            `json:"goroutines_after"`
}

// problems lists what makes the soak fail.
func (r *Report) problems() []string {
	var p []string
	for reason, n := range r.Unexpected {
		p = append(p, fmt.Sprintf("%d unexpected failures: %s", n, reason))
	}
	// A few descriptors or goroutines may come and go (a pooled app
	// connection, a timer); growth means a leak.
	if r.FDsAfter > r.FDsBefore+8 {
		p = append(p, fmt.Sprintf("file descriptors grew from %d to %d", r.FDsBefore, r.FDsAfter))
	}
	if r.GoroutinesAfter > r.GoroutinesBefore+16 {
		p = append(p, fmt.Sprintf("goroutines grew from %d to %d", r.GoroutinesBefore, r.GoroutinesAfter))
	}
	if r.Answered == 0 {
		p = append(p, "no request was answered")
	}
	sort.Strings(p)
	return p
}

func run(o options, log io.Writer) (*Report, error) {
	dir, err := os.MkdirTemp("", "soak")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := o.proxyBin
	if bin == "" {
		bin = filepath.Join(dir, "gunicorn-proxy")
		build := exec.Command("go", "build", "-o", bin, o.proxyPkg)
		build.Stdout, build.Stderr = log, log
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("building the proxy: %w", err)
		}
	}
	appDir, err := filepath.Abs(o.appDir)
	if err != nil {
		return nil, err
	}
	appAddr, proxyAddr, pprofAddr := freeAddr(), freeAddr(), freeAddr()

	app := &gunicorn{dir: appDir, bind: appAddr, log: log}
	if err := app.start(); err != nil {
		return nil, err
	}
	defer app.stop()

	proxy := exec.Command(bin, appAddr)
	proxy.Env = []string{"LISTEN=" + proxyAddr, "PPROF_LISTEN=" + pprofAddr, "PROXY_READ_TIMEOUT=10",
		"BUFFER_DIR=" + dir, "PATH=" + os.Getenv("PATH")}
	var proxyErr lockedBuffer
	proxy.Stderr = &proxyErr
	proxy.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := proxy.Start(); err != nil {
		return nil, err
	}
	defer func() {
		syscall.Kill(-proxy.Process.Pid, syscall.SIGKILL)
		proxy.Wait()
	}()
	if err := waitListening(proxyAddr); err != nil {
		return nil, fmt.Errorf("the proxy: %w\n%s", err, proxyErr.String())
	}

	r := &Report{Failed: map[string]int{}, Unexpected: map[string]int{}, Faults: map[string]int{}}
	// Before: the proxy warmed up, idle.
	t := newTraffic(proxyAddr, o.clients)
	t.run(2*time.Second, nil)
	time.Sleep(1500 * time.Millisecond) // idle app connections age out (1 s)
	r.FDsBefore, r.GoroutinesBefore = countFDs(proxy.Process.Pid), countGoroutines(pprofAddr)

	t = newTraffic(proxyAddr, o.clients)
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	var faults sync.WaitGroup
	faults.Add(1)
	go func() {
		defer faults.Done()
		app.injectFaults(ctx, o.faultEvery, r.Faults, t)
	}()
	t.run(o.duration, ctx)
	faults.Wait()
	if err := app.ensureRunning(); err != nil {
		return nil, err
	}

	// After: traffic over, idle again.
	time.Sleep(3 * time.Second)
	r.FDsAfter, r.GoroutinesAfter = countFDs(proxy.Process.Pid), countGoroutines(pprofAddr)
	r.Duration = o.duration.String()
	r.Sent, r.Answered = t.sent, t.answered
	for k, v := range t.failed {
		r.Failed[k] = v
	}
	for k, v := range t.unexpected {
		r.Unexpected[k] = v
	}
	fmt.Fprintf(log, "soak: proxy stderr (last lines):\n%s\n", tail(proxyErr.String(), 10))
	return r, nil
}

// traffic is the clients: a mix of what a Python app sees.
type traffic struct {
	addr    string
	clients int

	mu         sync.Mutex
	sent       int
	answered   int
	failed     map[string]int
	unexpected map[string]int
	// faults are the windows in which the app was made to fail: a worker
	// killed, a restart, a crashing route in flight. A 502 for a request
	// that overlapped one is the right answer; any other 502 is not.
	faults []window
}

type window struct {
	from, to time.Time
	// reload marks a graceful reload: gunicorn finishes requests in
	// flight but closes idle keep-alive connections, and a POST sent on
	// one at that instant is lost. The proxy does not send a POST twice
	// (it may have been acted on), so only POSTs are excused by a reload;
	// a GET must be retried and succeed.
	reload bool
}

// beginFault opens a fault window, before the fault happens, so that the
// requests it fails find it open when they are judged; endFault closes it.
func (t *traffic) beginFault() int { return t.begin(false) }

func (t *traffic) begin(reload bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults = append(t.faults, window{from: time.Now(), reload: reload})
	return len(t.faults) - 1
}

func (t *traffic) endFault(i int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults[i].to = time.Now()
}

// overlapsFault reports whether [from, to] overlaps a fault window; the
// windows are widened by a second, for the kernel and gunicorn to act on
// a signal, and an open window reaches to now.
func (t *traffic) overlapsFault(from, to time.Time, idempotent bool) bool {
	const slack = time.Second
	for _, w := range t.faults {
		if w.reload && idempotent {
			continue
		}
		end := w.to
		if end.IsZero() {
			end = time.Now()
		}
		if from.Before(end.Add(slack)) && to.After(w.from.Add(-slack)) {
			return true
		}
	}
	return false
}

func newTraffic(addr string, clients int) *traffic {
	return &traffic{addr: addr, clients: clients, failed: map[string]int{}, unexpected: map[string]int{}}
}

var upload = bytes.Repeat([]byte("soak-upload-"), 20<<10) // 240 KiB: spooled to disk

func (t *traffic) run(d time.Duration, ctx context.Context) {
	if ctx == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), d)
		defer cancel()
	}
	var wg sync.WaitGroup
	for i := 0; i < t.clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 4}
			// Closing the idle connections at the end lets the proxy's side
			// close too, so descriptors can be compared before and after.
			defer tr.CloseIdleConnections()
			c := &http.Client{Timeout: 30 * time.Second, Transport: tr}
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			for ctx.Err() == nil {
				t.one(c, rng)
			}
		}(i)
	}
	wg.Wait()
}

// one sends one request, chosen at random, and files its outcome.
func (t *traffic) one(c *http.Client, rng *rand.Rand) {
	var (
		method, path string
		body         []byte
		check        func([]byte) bool
		mayFail      bool // the route itself fails: a 502 is right
	)
	switch n := rng.IntN(100); {
	case n < 40:
		method, path = "GET", "/pid"
	case n < 55:
		method, path, body = "POST", "/", []byte(`{"order":42}`)
		check = func(b []byte) bool { return bytes.Contains(b, []byte(`"body_length":12`)) }
	case n < 65:
		method, path, body = "POST", "/", upload
		sum := sha256.Sum256(upload)
		want := fmt.Sprintf("%x", sum)
		check = func(b []byte) bool { return bytes.Contains(b, []byte(want)) }
	case n < 80:
		method, path = "GET", "/big/1"
		check = func(b []byte) bool { return len(b) == 1<<20 }
	case n < 100:
		method, path = "GET", "/sleep/0.05"
	}
	// Now and then a route that kills its worker, taking with it whatever
	// else that worker was doing.
	if rng.IntN(1000) == 0 {
		method, path, body, check, mayFail = "GET", "/die", nil, nil, true
		if rng.IntN(2) == 0 {
			path = "/crash"
		}
	}
	req, _ := http.NewRequest(method, "http://"+t.addr+path, bytes.NewReader(body))
	if mayFail {
		defer t.endFault(t.beginFault())
	}
	started := time.Now()
	resp, err := c.Do(req)
	var got []byte
	if err == nil {
		got, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	reason := ""
	switch {
	case err != nil:
		reason = "client error: " + shorten(err.Error())
	case resp.StatusCode != 200:
		reason = fmt.Sprintf("%d %s %s", resp.StatusCode, method, routeName(path))
	case check != nil && !check(got):
		reason = fmt.Sprintf("wrong body for %s %s (%d bytes)", method, routeName(path), len(got))
	}
	finished := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent++
	if reason == "" {
		t.answered++
		return
	}
	t.failed[reason]++
	is502 := err == nil && resp.StatusCode == 502
	if !(is502 && (mayFail || t.overlapsFault(started, finished, method != "POST"))) {
		t.unexpected[reason]++
	}
}

func routeName(path string) string {
	if i := strings.IndexByte(path[1:], '/'); i >= 0 {
		return path[:i+1]
	}
	return path
}

var addrPort = regexp.MustCompile(`127\.0\.0\.1:\d+`)

func shorten(s string) string { return addrPort.ReplaceAllString(s, "127.0.0.1:*") }

// gunicorn is the app server, with gthread workers: they keep idle
// connections for 2 s, which is what makes a proxy's pool go stale.
type gunicorn struct {
	dir, bind string
	log       io.Writer
	cmd       *exec.Cmd
	done      chan struct{}
}

func (g *gunicorn) start() error {
	g.cmd = exec.Command("/usr/bin/gunicorn", "-c", "gunicorn.conf.py", "--workers", "3",
		"--worker-class", "gthread", "--threads", "4", "--keep-alive", "2", "--bind", g.bind, "app:app")
	g.cmd.Dir = g.dir
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		return fmt.Errorf("starting gunicorn: %w", err)
	}
	g.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(g.cmd, g.done)
	return waitListening(g.bind)
}

func (g *gunicorn) stop() {
	if g.cmd == nil {
		return
	}
	syscall.Kill(-g.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
		<-g.done
	}
	g.cmd = nil
}

func (g *gunicorn) ensureRunning() error {
	if g.cmd != nil {
		return nil
	}
	return g.start()
}

// injectFaults rotates through what happens to gunicorn in production: a
// graceful reload (SIGHUP), a worker killed (OOM killer, --timeout), and
// a full restart with the port closed for a moment.
func (g *gunicorn) injectFaults(ctx context.Context, every time.Duration, counts map[string]int, t *traffic) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		switch i % 3 {
		case 0:
			// Graceful: in-flight requests finish, idle connections close.
			// Only a POST caught on a closing connection may fail for it.
			w := t.begin(true)
			g.cmd.Process.Signal(syscall.SIGHUP)
			counts["gunicorn reload (SIGHUP)"]++
			time.Sleep(time.Second) // the old workers go
			t.endFault(w)
		case 1:
			if pid := g.aWorker(); pid > 0 {
				w := t.beginFault()
				syscall.Kill(pid, syscall.SIGKILL)
				counts["worker killed (SIGKILL)"]++
				t.endFault(w)
			}
		case 2:
			w := t.beginFault()
			g.stop()
			time.Sleep(200 * time.Millisecond)
			if err := g.start(); err != nil {
				fmt.Fprintln(g.log, "soak: restarting gunicorn:", err)
			}
			counts["gunicorn restart"]++
			t.endFault(w)
		}
	}
}

// aWorker finds one of gunicorn's worker processes.
func (g *gunicorn) aWorker() int {
	entries, _ := os.ReadDir("/proc")
	master := strconv.Itoa(g.cmd.Process.Pid)
	for _, e := range entries {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == master {
			pid, _ := strconv.Atoi(e.Name())
			return pid
		}
	}
	return 0
}

func countFDs(pid int) int {
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(entries)
}

// countGoroutines reads the proxy's goroutine count from its pprof listener.
func countGoroutines(addr string) int {
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`goroutine profile: total (\d+)`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(addr string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s", addr)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lockedBuffer is the proxy's stderr, written by os/exec's copier while
// the soak reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
