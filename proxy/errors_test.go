package proxy

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Causes go to stderr at most once a second for each kind, so a flood of
// failures cannot flood the log; what was held back is counted on the next
// line of that kind, and one kind never silences another.
func TestErrorLogAtMostOnceASecondPerKind(t *testing.T) {
	var buf bytes.Buffer
	l := newErrorLog(&buf)
	for i := 0; i < 50; i++ {
		l.logf(logUpstream, "app unreachable %d", i)
	}
	l.logf(logClient, "client error")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "app unreachable 0") || !strings.HasSuffix(lines[1], "client error") {
		t.Fatalf("after 50 upstream and 1 client line, stderr has:\n%s", buf.String())
	}

	time.Sleep(1100 * time.Millisecond)
	buf.Reset()
	l.logf(logUpstream, "app unreachable again")
	if got, want := strings.TrimSpace(buf.String()), "app unreachable again (and 49 more like this)"; !strings.HasSuffix(got, want) {
		t.Errorf("a second later: %q, want it to end with %q", got, want)
	}
}
