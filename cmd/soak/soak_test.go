package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// CI's soak: 20 seconds of mixed traffic while gunicorn is reloaded, loses
// a worker and is restarted; `go run ./cmd/soak -duration 10m` is the real
// thing. It fails on any request the proxy should have answered and did
// not, and on descriptors or goroutines left behind.
func TestSoak(t *testing.T) {
	if _, err := os.Stat("/usr/bin/gunicorn"); err != nil {
		t.Fatal("gunicorn is not installed: apt-get install gunicorn python3-flask")
	}
	var log strings.Builder
	r, err := run(options{
		duration:   20 * time.Second,
		faultEvery: 2 * time.Second,
		clients:    8,
		proxyPkg:   "../gunicorn-proxy",
		appDir:     "../../testdata/app",
	}, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("sent %d, answered %d, failed %v, faults %v; fds %d → %d, goroutines %d → %d",
		r.Sent, r.Answered, r.Failed, r.Faults, r.FDsBefore, r.FDsAfter, r.GoroutinesBefore, r.GoroutinesAfter)
	for _, p := range r.problems() {
		t.Error(p)
	}
	if r.Faults["gunicorn restart"] == 0 || r.Faults["worker killed (SIGKILL)"] == 0 || r.Faults["gunicorn reload (SIGHUP)"] == 0 {
		t.Errorf("not every fault was injected: %v", r.Faults)
	}
}
