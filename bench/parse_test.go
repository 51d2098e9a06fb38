package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	out := []byte(`Running 10s test @ http://127.0.0.1:1234/small
  2 threads and 64 connections
  Latency Distribution
     50%  412.00us
  480000 requests in 10.00s, 80.00MB read
Requests/sec:  48000.00
BENCHJSON {"requests":480000,"duration_us":10000000,"bytes":83886080,"connect":0,"read":2,"write":0,"status":3,"timeout":1,"p50":412,"p90":900,"p99":3100,"max":52000}
`)
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 480000 || r.RPS != 48000 || r.P50us != 412 || r.P99us != 3100 || r.Errors != 6 {
		t.Errorf("got %+v", r)
	}
	if !strings.Contains(r.ErrorsText, "non-2xx/3xx 3") {
		t.Errorf("errors text %q", r.ErrorsText)
	}
	if _, err := parseWrk([]byte("unable to connect to 127.0.0.1:1\n")); err == nil {
		t.Error("no error for output without summary")
	}
}

func TestParseHey(t *testing.T) {
	ok := "\nSummary:\n  Total:\t1.0010 secs\n  Requests/sec:\t11501.7171\n\nResponse time histogram:\n  0.000 [1]\t|\n  0.051 [11508]\t|■■■■\n\n" +
		"Latency distribution:\n  10% in 0.0001 secs\n  50% in 0.0002 secs\n  90% in 0.0003 secs\n  99% in 0.0006 secs\n\n" +
		"Details (average, fastest, slowest):\n  DNS+dialup:\t0.0000 secs, 0.0000 secs, 0.5124 secs\n\n" +
		"Status code distribution:\n  [200]\t11513 responses\n  [502]\t7 responses\n\n" +
		"Error distribution:\n  [12]\tGet \"http://127.0.0.1:1/small\": dial tcp 127.0.0.1:1: connect: connection refused\n"
	r, err := parseHey([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.RPS-11501.7171) > 1e-6 || r.Requests != 11520 || r.Errors != 19 {
		t.Errorf("got %+v", r)
	}
	if math.Abs(r.P50us-200) > 1e-6 || math.Abs(r.P99us-600) > 1e-6 {
		t.Errorf("latency p50 %v p99 %v", r.P50us, r.P99us)
	}
	if _, err := parseHey([]byte("garbage")); err == nil {
		t.Error("no error for garbage")
	}
}

func TestParseGoBench(t *testing.T) {
	rows := parseGoBench("goos: linux\nBenchmarkForwardGET-2   \t 1000000\t      1043 ns/op\t       0 B/op\t       0 allocs/op\nBenchmarkForwardPOST-2 \t  500000\t      2100 ns/op\t      16 B/op\t       1 allocs/op\nPASS\n")
	if len(rows) != 2 || rows[0].Name != "BenchmarkForwardGET-2" || rows[0].AllocsPerOp != 0 || rows[1].AllocsPerOp != 1 || rows[1].BytesPerOp != 16 {
		t.Errorf("got %+v", rows)
	}
}

func TestStat(t *testing.T) {
	s := statOf([]float64{3, 1, 2})
	if s.Median != 2 || s.Min != 1 || s.Max != 3 {
		t.Errorf("got %+v", s)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median %v", m)
	}
	if statOf(nil) != nil {
		t.Error("statOf(nil) != nil")
	}
}

func TestSummarizeRatio(t *testing.T) {
	runs := []runResult{
		{Scenario: "small", Target: tNginx, Round: 1, Wrk: &loadResult{RPS: 100, Requests: 1000}},
		{Scenario: "small", Target: tNginx, Round: 2, Wrk: &loadResult{RPS: 120, Requests: 1200}},
		{Scenario: "small", Target: tNginx, Round: 3, Wrk: &loadResult{RPS: 80, Requests: 800}},
		{Scenario: "small", Target: tGunicornProxy, Round: 1, Wrk: &loadResult{RPS: 150, Requests: 1500, Errors: 1}},
		{Scenario: "small", Target: tGunicornProxy, Round: 2, Error: "boom"},
		{Scenario: "idle", Target: tNginx, Round: 1, Mem: &memResult{Clients: 10, Completed: 10, PerConnKiB: 0.5}},
		{Scenario: "idle", Target: tGunicornProxy, Round: 1, Mem: &memResult{Clients: 10, Completed: 9, PerConnKiB: 1.5}},
	}
	scs := []scenario{scenarios[0], scenarios[4]}
	sums := summarize(runs, scs, []string{tGunicornProxy, tNginx})
	p := findSummary(sums, "small", tGunicornProxy)
	if p.RatioNginx != 1.5 || p.Errors != 1 || p.Failed != 1 || p.FirstError != "boom" || p.Requests != 1500 {
		t.Errorf("proxy summary %+v", p)
	}
	if i := findSummary(sums, "idle", tGunicornProxy); i.RatioNginx != 3 || i.Completed != 9 {
		t.Errorf("idle summary %+v", i)
	}
	goals := evalGoals(sums, nil)
	if goals[0].Met == nil || !*goals[0].Met {
		t.Errorf("small goal %+v", goals[0])
	}
	if g := goals[len(goals)-2]; g.Met == nil || !*g.Met {
		t.Errorf("idle goal %+v (1.5 KiB is within 2 KiB, so met must be true)", g)
	}
}

// TestTemplates renders both configs and, when the binaries are here, has
// nginx and HAProxy check them.
func TestTemplates(t *testing.T) {
	dir := t.TempDir()
	d := configData{Dir: dir, Port: 18080, BackendPort: 18081, Workers: 2, MaxConn: 9000,
		WorkerConnections: 10240, RlimitNofile: 20000, MaxBody: maxBodySize, MaxBodyBytes: maxBodyBytes, Root: os.Geteuid() == 0}
	ng, err := renderConfig("nginx.conf.tmpl", dir, "nginx.conf", d)
	if err != nil {
		t.Fatal(err)
	}
	hp, err := renderConfig("haproxy.cfg.tmpl", dir, "haproxy.cfg", d)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ng, hp} {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "<no value>") || !strings.Contains(string(b), "18081") {
			t.Errorf("%s rendered badly:\n%s", f, b)
		}
	}
	if p := lookTool("nginx"); p != "" {
		out, err := exec.Command(p, "-t", "-p", dir+"/", "-e", filepath.Join(dir, "error.log"), "-c", ng, "-g", "daemon off;").CombinedOutput()
		if err != nil {
			t.Errorf("nginx -t: %v\n%s", err, out)
		}
	}
	if p := lookTool("haproxy"); p != "" {
		out, err := exec.Command(p, "-c", "-f", hp).CombinedOutput()
		if err != nil {
			t.Errorf("haproxy -c: %v\n%s", err, out)
		}
	}
}

func TestParseFlagsSmoke(t *testing.T) {
	c, err := parseFlags([]string{"-smoke"})
	if err != nil {
		t.Fatal(err)
	}
	if c.rounds != 1 || c.duration != 3*time.Second || strings.Join(c.scenarios, ",") != "small" ||
		strings.Join(c.proxies, ",") != "gunicorn-proxy,direct" || c.goBench {
		t.Errorf("smoke config %+v", c)
	}
	if _, err := parseFlags([]string{"-scenarios", "nope"}); err == nil {
		t.Error("unknown scenario accepted")
	}
	if _, err := parseFlags([]string{"-proxies", "caddy"}); err == nil {
		t.Error("unknown proxy accepted")
	}
}
