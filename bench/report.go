package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// stat is the median and spread of one figure over rounds.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func statOf(v []float64) *stat {
	if len(v) == 0 {
		return nil
	}
	return &stat{Median: median(v), Min: minOf(v), Max: maxOf(v)}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = math.Min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = math.Max(m, x)
	}
	return m
}

// summary is one scenario against one target over all rounds.
type summary struct {
	Scenario   string `json:"scenario"`
	Target     string `json:"proxy"`
	Runs       int    `json:"runs"`
	Failed     int    `json:"failed_runs"`
	FirstError string `json:"first_error,omitempty"`

	// Load scenarios (wrk), medians over rounds unless said otherwise.
	RPS         *stat   `json:"rps,omitempty"`
	RatioNginx  float64 `json:"ratio_to_nginx,omitempty"` // median / nginx's median
	P50us       float64 `json:"p50_us,omitempty"`
	P99us       float64 `json:"p99_us,omitempty"`
	CPUusPerReq float64 `json:"cpu_us_per_req,omitempty"`
	PeakRSSKiB  int64   `json:"peak_rss_kib,omitempty"`  // highest over rounds
	Requests    int64   `json:"requests,omitempty"`      // sum over rounds
	Errors      int64   `json:"errors"`                  // sum over rounds
	OtherCPUPct float64 `json:"other_cpu_pct,omitempty"` // median noise, see runResult
	HeyRPS      *stat   `json:"hey_rps,omitempty"`
	HeyErrors   int64   `json:"hey_errors,omitempty"`

	// Memory scenarios.
	Figure     *stat  `json:"figure,omitempty"` // idle: KiB per connection; others: peak RSS in MiB
	FigureUnit string `json:"figure_unit,omitempty"`
	Clients    int    `json:"clients,omitempty"`
	Completed  int    `json:"completed,omitempty"` // lowest over rounds
}

func summarize(runs []runResult, scs []scenario, targets []string) []summary {
	var out []summary
	for _, sc := range scs {
		var row []summary
		for _, t := range targets {
			if !sc.runsAgainst(t) {
				continue // not compared in this scenario: no row
			}
			s := summary{Scenario: sc.name, Target: t, Completed: -1}
			var rps, p50, p99, cpu, hey, fig, other []float64
			for _, r := range runs {
				if r.Scenario != sc.name || r.Target != t {
					continue
				}
				s.Runs++
				if r.Error != "" {
					s.Failed++
					if s.FirstError == "" {
						s.FirstError = r.Error
					}
				}
				s.PeakRSSKiB = max(s.PeakRSSKiB, r.PeakRSSKiB)
				if w := r.Wrk; w != nil {
					rps = append(rps, w.RPS)
					p50 = append(p50, w.P50us)
					p99 = append(p99, w.P99us)
					cpu = append(cpu, r.CPUusPerReq)
					other = append(other, r.OtherCPUPct)
					s.Requests += w.Requests
					s.Errors += w.Errors
				}
				if h := r.Hey; h != nil {
					hey = append(hey, h.RPS)
					s.HeyErrors += h.Errors
				}
				if m := r.Mem; m != nil {
					s.Clients = m.Clients
					s.Errors += int64(m.Errors)
					if s.Completed < 0 || m.Completed < s.Completed {
						s.Completed = m.Completed
					}
					if sc.name == "idle" {
						fig = append(fig, m.PerConnKiB)
					} else {
						fig = append(fig, float64(m.PeakKiB)/1024)
					}
				}
			}
			if s.Completed < 0 {
				s.Completed = 0
			}
			s.RPS = statOf(rps)
			s.HeyRPS = statOf(hey)
			if len(rps) > 0 {
				s.P50us, s.P99us, s.CPUusPerReq = median(p50), median(p99), median(cpu)
				s.OtherCPUPct = median(other)
			}
			if s.Figure = statOf(fig); s.Figure != nil {
				s.FigureUnit = "MiB peak RSS"
				if sc.name == "idle" {
					s.FigureUnit = "KiB per connection"
				}
			}
			row = append(row, s)
		}
		// Ratios to nginx.
		var ng *summary
		for i := range row {
			if row[i].Target == tNginx {
				ng = &row[i]
			}
		}
		if ng != nil {
			for i := range row {
				switch {
				case row[i].RPS != nil && ng.RPS != nil && ng.RPS.Median > 0:
					row[i].RatioNginx = row[i].RPS.Median / ng.RPS.Median
				case row[i].Figure != nil && ng.Figure != nil && ng.Figure.Median > 0:
					row[i].RatioNginx = row[i].Figure.Median / ng.Figure.Median
				}
			}
		}
		out = append(out, row...)
	}
	return out
}

// goal is one of the product's targets from issue 5, as measured.
type goal struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      *bool  `json:"met"` // nil: not measured in this run
}

func findSummary(sums []summary, sc, t string) *summary {
	for i := range sums {
		if sums[i].Scenario == sc && sums[i].Target == t {
			return &sums[i]
		}
	}
	return nil
}

func evalGoals(sums []summary, gb *goBenchResult) []goal {
	var gs []goal
	ratio := func(sc string, want float64) {
		g := goal{Goal: fmt.Sprintf("%s: req/s >= %.1fx nginx", sc, want), Measured: "not run"}
		p, n := findSummary(sums, sc, tGunicornProxy), findSummary(sums, sc, tNginx)
		if p != nil && n != nil && p.RPS != nil && n.RPS != nil {
			met := p.RatioNginx >= want
			g.Measured, g.Met = fmt.Sprintf("%.2fx", p.RatioNginx), &met
		}
		gs = append(gs, g)
	}
	ratio("small", 1.3)
	ratio("post16k", 1.3)
	ratio("64k", 1.2)
	ratio("newconn", 1.0)
	for _, sc := range []string{"small", "64k", "post16k", "newconn"} {
		g := goal{Goal: sc + ": p99 <= nginx", Measured: "not run"}
		p, n := findSummary(sums, sc, tGunicornProxy), findSummary(sums, sc, tNginx)
		if p != nil && n != nil && p.RPS != nil && n.RPS != nil {
			met := p.P99us <= n.P99us
			g.Measured, g.Met = fmt.Sprintf("%s vs %s", fmtLatency(p.P99us), fmtLatency(n.P99us)), &met
		}
		gs = append(gs, g)
	}
	g := goal{Goal: "idle keep-alive: <= 2 KiB RSS per connection", Measured: "not run"}
	if p := findSummary(sums, "idle", tGunicornProxy); p != nil && p.Figure != nil {
		met := p.Figure.Median <= 2
		g.Measured, g.Met = fmt.Sprintf("%.2f KiB", p.Figure.Median), &met
	}
	gs = append(gs, g)
	g = goal{Goal: "0 allocs/op in the proxy's go test -bench (forwarded GET and POST)", Measured: "not run"}
	if gb != nil {
		g.Measured = gb.verdict
		g.Met = gb.met
	}
	gs = append(gs, g)
	return gs
}

// report is the JSON written beside the Markdown.
type report struct {
	Command   string         `json:"command"`
	Machine   machineInfo    `json:"machine"`
	Config    map[string]any `json:"config"`
	Skipped   []string       `json:"skipped,omitempty"`
	Runs      []runResult    `json:"runs"`
	Summaries []summary      `json:"summaries"`
	Goals     []goal         `json:"goals"`
	GoBench   *goBenchResult `json:"go_bench,omitempty"`
	Seconds   float64        `json:"seconds"`
}

func fmtLatency(us float64) string {
	switch {
	case us <= 0 || math.IsNaN(us):
		return "–"
	case us < 1000:
		return fmt.Sprintf("%.0f µs", us)
	case us < 100000:
		return fmt.Sprintf("%.2f ms", us/1000)
	default:
		return fmt.Sprintf("%.0f ms", us/1000)
	}
}

func fmtRate(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func fmtStat(s *stat, f func(float64) string) string {
	if s == nil {
		return "–"
	}
	if s.Min == s.Max {
		return f(s.Median)
	}
	return fmt.Sprintf("%s [%s–%s]", f(s.Median), f(s.Min), f(s.Max))
}

func fmtMiB(kib int64) string {
	if kib <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

func fmtRatio(r float64) string {
	if r == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", r)
}

// writeMarkdown writes the tables a person reads.
func writeMarkdown(w io.Writer, rep *report, scs []scenario) {
	cfg := rep.Config
	fmt.Fprintf(w, "Command: `%s`  \n", rep.Command)
	m := rep.Machine
	fmt.Fprintf(w, "Date: %s; machine: %d CPUs (%s), %s, Linux %s, %s", m.Date, m.NProc, m.CPU, m.MemTotal, m.Kernel, m.Go)
	var names []string
	for k := range m.Versions {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(w, "; %s", m.Versions[k])
	}
	if m.Source != "" {
		fmt.Fprintf(w, "  \ngunicorn-proxy and backend built from %s", m.Source)
	}
	fmt.Fprintf(w, "  \nLoad average (1 min) at start %s, at end %s; run took %.0f s", m.LoadStart, m.LoadEnd, rep.Seconds)
	var other []float64
	for _, r := range rep.Runs {
		if r.Wrk != nil {
			other = append(other, r.OtherCPUPct)
		}
	}
	if o := statOf(other); o != nil {
		fmt.Fprintf(w, "  \nCPU used by other processes during the measured wrk runs: median %.0f%%, max %.0f%% of the machine (the noise; see README)", o.Median, o.Max)
	}
	fmt.Fprintf(w, "  \nSettings: %v workers/threads/GOMAXPROCS per proxy; wrk -t%v -c%v -d%v; %v round(s), proxies alternated within each round; median [min–max] over rounds.\n",
		cfg["workers"], cfg["threads"], cfg["connections"], cfg["duration"], cfg["rounds"])
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "\n**Skipped:** %s\n", s)
	}

	var load, mem bool
	for _, sc := range scs {
		if sc.memory {
			mem = true
		} else {
			load = true
		}
	}
	if load {
		fmt.Fprintf(w, "\n### Throughput and latency\n\n")
		fmt.Fprintf(w, "| scenario | proxy | req/s (wrk) | × nginx | p50 | p99 | CPU µs/req | peak RSS | errors | req/s (hey) |\n")
		fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, sc := range scs {
			if sc.memory {
				continue
			}
			for _, s := range rep.Summaries {
				if s.Scenario != sc.name {
					continue
				}
				if s.RPS == nil {
					fmt.Fprintf(w, "| %s | %s | failed: %s | | | | | | | |\n", sc.name, s.Target, oneLine(s.FirstError))
					continue
				}
				cpu := fmt.Sprintf("%.1f", s.CPUusPerReq)
				if s.Target == tDirect {
					cpu = fmt.Sprintf("(backend %.1f)", s.CPUusPerReq)
				}
				errs := fmt.Sprintf("%d", s.Errors)
				if s.Failed > 0 {
					errs += fmt.Sprintf(" (+%d failed runs)", s.Failed)
				}
				heyCol := fmtStat(s.HeyRPS, fmtRate)
				if s.HeyErrors > 0 {
					heyCol += fmt.Sprintf(" (%d errors)", s.HeyErrors)
				}
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
					sc.name, s.Target, fmtStat(s.RPS, fmtRate), fmtRatio(s.RatioNginx),
					fmtLatency(s.P50us), fmtLatency(s.P99us), cpu, fmtMiB(s.PeakRSSKiB), errs, heyCol)
			}
		}
	}
	if mem {
		fmt.Fprintf(w, "\n### Memory\n\n")
		fmt.Fprintf(w, "| scenario | proxy | figure | × nginx | RSS before | peak RSS | completed | errors |\n")
		fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|\n")
		for _, sc := range scs {
			if !sc.memory {
				continue
			}
			for _, s := range rep.Summaries {
				if s.Scenario != sc.name {
					continue
				}
				if s.Figure == nil {
					fmt.Fprintf(w, "| %s | %s | failed: %s | | | | | |\n", sc.name, s.Target, oneLine(s.FirstError))
					continue
				}
				var before int64
				for _, r := range rep.Runs {
					if r.Scenario == sc.name && r.Target == s.Target && r.Mem != nil {
						before = r.Mem.BaselineKiB
						break
					}
				}
				unit := " MiB"
				f := func(v float64) string { return fmt.Sprintf("%.1f", v) }
				if sc.name == "idle" {
					unit = " KiB/conn"
					f = func(v float64) string { return fmt.Sprintf("%.2f", v) }
				}
				errs := fmt.Sprintf("%d", s.Errors)
				if s.Failed > 0 {
					errs += fmt.Sprintf(" (+%d failed runs)", s.Failed)
				}
				fmt.Fprintf(w, "| %s | %s | %s%s | %s | %s | %s | %d/%d | %s |\n",
					sc.name, s.Target, fmtStat(s.Figure, f), unit, fmtRatio(s.RatioNginx),
					fmtMiB(before), fmtMiB(s.PeakRSSKiB), s.Completed, s.Clients, errs)
			}
		}
	}
	var measured []goal
	for _, g := range rep.Goals {
		if g.Met != nil || g.Measured != "not run" {
			measured = append(measured, g)
		}
	}
	if len(measured) > 0 {
		fmt.Fprintf(w, "\n### Product targets (reported, not asserted)\n\n| target | measured | met |\n|---|---|---|\n")
		for _, g := range measured {
			met := "–"
			if g.Met != nil {
				met = "no"
				if *g.Met {
					met = "yes"
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s |\n", g.Goal, oneLine(g.Measured), met)
		}
	}
	var errs []string
	for _, r := range rep.Runs {
		detail := r.Error
		if detail == "" && r.Wrk != nil && r.Wrk.ErrorsText != "" {
			detail = "wrk: " + r.Wrk.ErrorsText
		}
		if detail == "" && r.Mem != nil && r.Mem.ErrorsText != "" {
			detail = r.Mem.ErrorsText
		}
		if detail == "" && r.Hey != nil && r.Hey.ErrorsText != "" {
			detail = "hey: " + r.Hey.ErrorsText
		}
		if detail != "" {
			errs = append(errs, fmt.Sprintf("- %s / %s / round %d: %s", r.Scenario, r.Target, r.Round, oneLine(detail)))
		}
	}
	if len(errs) > 0 {
		fmt.Fprintf(w, "\n### Errors\n\n%s\n", strings.Join(errs, "\n"))
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// writeOutputs writes <out>/<stamp>.json and <out>/<stamp>.md.
func writeOutputs(out, stamp string, rep *report, md []byte) (jsonPath, mdPath string, err error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", "", err
	}
	jsonPath = filepath.Join(out, stamp+".json")
	mdPath = filepath.Join(out, stamp+".md")
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(mdPath, md, 0o644); err != nil {
		return "", "", err
	}
	return jsonPath, mdPath, nil
}

// resultsPage is bench/RESULTS.md: the latest full run, as the README links it.
func resultsPage(table string) string {
	return "# Latest bench figures\n\n" +
		"Written by `go run ./bench -write-results` (see [README.md](README.md) for what each scenario and column means). " +
		"Figures from one machine and one run: compare rows of the same table, not tables from different machines.\n\n" +
		table
}
