package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// goBenchResult is the proxy's own `go test -bench` figures: the allocation
// target (0 allocs/op for forwarded GET and POST) is checked there, not
// under wrk.
type goBenchResult struct {
	Command    string       `json:"command"`
	Benchmarks []goBenchRow `json:"benchmarks"`
	Error      string       `json:"error,omitempty"`
	verdict    string
	met        *bool
}

type goBenchRow struct {
	Name        string  `json:"name"`
	NsPerOp     float64 `json:"ns_per_op"`
	BytesPerOp  int64   `json:"bytes_per_op"`
	AllocsPerOp int64   `json:"allocs_per_op"`
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+)\s+\d+\s+([0-9.]+) ns/op(?:.*?\s([0-9]+) B/op)?(?:.*?\s([0-9]+) allocs/op)?`)

// runGoBench runs the proxy package's benchmarks with -benchmem.
func runGoBench(ctx context.Context, root string) *goBenchResult {
	argv := []string{"go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", "1s", "./proxy/..."}
	r := &goBenchResult{Command: strings.Join(argv, " ")}
	out, stderr, err := runBounded(ctx, "go-test-bench", argv, os.Environ(), root, 8*time.Minute)
	r.Benchmarks = parseGoBench(string(out))
	if err != nil {
		r.Error = oneLine(err.Error() + " " + lastLines(stderr, 5))
	}
	var hot []goBenchRow
	for _, b := range r.Benchmarks {
		n := strings.ToLower(b.Name)
		if strings.Contains(n, "get") || strings.Contains(n, "post") || strings.Contains(n, "forward") {
			hot = append(hot, b)
		}
	}
	switch {
	case len(hot) == 0 && r.Error != "":
		r.verdict = "go test -bench failed: " + r.Error
	case len(hot) == 0:
		r.verdict = "no benchmark named *Get*/*Post*/*Forward* in ./proxy"
	default:
		met := true
		var parts []string
		for _, b := range hot {
			parts = append(parts, fmt.Sprintf("%s %d allocs/op", b.Name, b.AllocsPerOp))
			if b.AllocsPerOp != 0 {
				met = false
			}
		}
		r.verdict = strings.Join(parts, ", ")
		r.met = &met
	}
	return r
}

func parseGoBench(out string) []goBenchRow {
	var rows []goBenchRow
	for _, l := range strings.Split(out, "\n") {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		row := goBenchRow{Name: m[1]}
		row.NsPerOp, _ = strconv.ParseFloat(m[2], 64)
		row.BytesPerOp, _ = strconv.ParseInt(m[3], 10, 64)
		row.AllocsPerOp, _ = strconv.ParseInt(m[4], 10, 64)
		rows = append(rows, row)
	}
	return rows
}
