// Command bench measures gunicorn-proxy against nginx and HAProxy side by
// side, with the same backend, the same settings and the same load, on any
// Linux machine, with one command:
//
//	go run ./bench                 # full run, ~15-20 min on 2 cores
//	go run ./bench -smoke          # one short round: small GET, gunicorn-proxy and direct
//
// It installs what is missing (Debian: nginx haproxy wrk hey), builds the
// backend (bench/backend) and the proxy, renders the nginx and HAProxy
// configs from bench/templates, and runs every scenario against every proxy,
// round after round, each on a fresh process. Traffic goes to 127.0.0.1 only;
// every process it starts runs in its own process group and is stopped by
// PGID at the end, on Ctrl-C or on a panic. The Markdown table goes to
// stdout and to bench/results/<time>.md, the details to <time>.json.
// See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The limits every proxy gets: MAX_CONNECTIONS and MAX_BODY_SIZE (2m, so
// the 1 MiB slow uploads fit under every proxy's limit).
const (
	maxConnections = 10000
	maxBodySize    = "2m"
	maxBodyBytes   = 2 << 20
)

type config struct {
	rounds        int
	duration      time.Duration
	warmup        time.Duration
	heyDuration   time.Duration
	scenarios     []string
	proxies       []string
	workers       int
	threads       int
	conns         int
	smoke         bool
	out           string
	cpuprofile    string
	memprofile    string
	proxyBin      string
	proxyEnv      []string
	idleConns     int
	uploadClients int
	readers       int
	memHold       time.Duration
	goBench       bool
	writeResults  bool
	quietWait     time.Duration
	command       string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func parseFlags(args []string) (config, error) {
	var c config
	var scen, prox string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; every proxy runs every scenario once per round")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured wrk time per run")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured wrk time before each run")
	fs.DurationVar(&c.heyDuration, "hey-duration", 3*time.Second, "hey cross-check time per run (0: no hey)")
	fs.StringVar(&scen, "scenarios", "small,64k,post16k,newconn,idle,slowupload,slowread,json64k,json64k-gzip", "scenarios to run (see bench/README.md)")
	fs.StringVar(&prox, "proxies", "gunicorn-proxy,nginx,haproxy,direct", "proxies to compare; direct = no proxy")
	fs.IntVar(&c.workers, "workers", runtime.NumCPU(), "GOMAXPROCS = nginx worker_processes = HAProxy nbthread")
	fs.IntVar(&c.threads, "threads", 2, "wrk threads")
	fs.IntVar(&c.conns, "connections", 64, "wrk and hey connections")
	fs.BoolVar(&c.smoke, "smoke", false, "one 3 s round of small GET against gunicorn-proxy and direct (CI)")
	fs.StringVar(&c.out, "out", "", "directory for <time>.json and <time>.md (default: bench/results in the repository)")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write gunicorn-proxy's CPU profile (round 1 of each load scenario) here; needs PPROF_LISTEN support")
	fs.StringVar(&c.memprofile, "memprofile", "", "write gunicorn-proxy's heap profile (round 1 of each scenario) here; needs PPROF_LISTEN support")
	fs.StringVar(&c.proxyBin, "proxy-bin", "", "use this gunicorn-proxy binary instead of building ./cmd/gunicorn-proxy")
	fs.Var((*multiFlag)(&c.proxyEnv), "proxy-env", "extra KEY=VALUE for gunicorn-proxy (repeatable)")
	fs.IntVar(&c.idleConns, "idle-conns", 5000, "idle scenario: keep-alive connections")
	fs.IntVar(&c.uploadClients, "upload-clients", 1000, "slowupload scenario: clients")
	fs.IntVar(&c.readers, "readers", 100, "slowread scenario: clients")
	fs.DurationVar(&c.memHold, "mem-hold", 10*time.Second, "slowread scenario: how long the readers read")
	fs.BoolVar(&c.goBench, "gobench", true, "also run go test -bench -benchmem ./proxy/... for the allocation target")
	fs.BoolVar(&c.writeResults, "write-results", false, "also replace bench/RESULTS.md with this run's table")
	fs.DurationVar(&c.quietWait, "quiet-wait", 0, "before each run, wait up to this long for the machine to be quiet (other work < 25% CPU); for shared machines")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.smoke {
		if !set["rounds"] {
			c.rounds = 1
		}
		if !set["duration"] {
			c.duration = 3 * time.Second
		}
		if !set["hey-duration"] {
			c.heyDuration = time.Second
		}
		if !set["scenarios"] {
			scen = "small"
		}
		if !set["proxies"] {
			prox = "gunicorn-proxy,direct"
		}
		if !set["gobench"] {
			c.goBench = false
		}
	}
	c.scenarios = splitList(scen)
	c.proxies = splitList(prox)
	for _, s := range c.scenarios {
		if _, ok := scenarioByName(s); !ok {
			return c, fmt.Errorf("unknown scenario %q", s)
		}
	}
	for _, p := range c.proxies {
		if !contains(allTargets, p) {
			return c, fmt.Errorf("unknown proxy %q (want some of %s)", p, strings.Join(allTargets, ","))
		}
	}
	if c.rounds < 1 || c.duration < time.Second || c.workers < 1 || c.threads < 1 || c.conns < c.threads {
		return c, errors.New("need -rounds >= 1, -duration >= 1s, -workers >= 1, -connections >= -threads >= 1")
	}
	c.command = "go run ./bench " + strings.Join(args, " ")
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" && !contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// bench is one invocation: its config, tools and binaries.
type bench struct {
	cfg        config
	root       string
	tmp        string
	tools      map[string]string
	backendBin string
	proxyBin   string
	nofile     uint64 // RLIMIT_NOFILE every child inherits
}

// outcome is what a run left behind, for callers (the smoke test).
type outcome struct {
	report   *report
	markdown []byte
	jsonPath string
	mdPath   string
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	// Whatever happens (an error, Ctrl-C, a panic), stop what we started.
	defer stopAll()
	defer func() {
		if r := recover(); r != nil {
			stopAll()
			panic(r)
		}
	}()
	out, err := runBench(ctx, cfg)
	if out != nil {
		os.Stdout.Write(out.markdown)
		logf("wrote %s and %s", out.jsonPath, out.mdPath)
	}
	if err != nil {
		stopAll()
		logf("%v", err)
		os.Exit(1)
	}
}

// runBench does a whole run and writes its outputs.
func runBench(ctx context.Context, cfg config) (*outcome, error) {
	started := time.Now()
	loadStart := loadAvg()
	if l, err := strconv.ParseFloat(loadStart, 64); err == nil && l > float64(runtime.NumCPU()) {
		logf("warning: load average %s on %d CPUs: other work competes for the cores, figures will be noisy", loadStart, runtime.NumCPU())
	}
	b := &bench{cfg: cfg}
	b.nofile = raiseNofile()
	if nofile := b.nofile; nofile < uint64(cfg.idleConns)+2000 && contains(cfg.scenarios, "idle") {
		logf("warning: RLIMIT_NOFILE is %d; the idle scenario needs more than %d", nofile, cfg.idleConns+2000)
	}

	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	b.root = root
	if cfg.out == "" {
		cfg.out = filepath.Join(root, "bench", "results")
		b.cfg.out = cfg.out
	}

	need := []string{"wrk"}
	if cfg.heyDuration > 0 {
		need = append(need, "hey")
	}
	for _, p := range cfg.proxies {
		if p == tNginx || p == tHAProxy {
			need = append(need, p)
		}
	}
	if b.tools, err = ensureTools(ctx, need); err != nil {
		return nil, err
	}

	b.tmp, err = os.MkdirTemp("", "gunicorn-proxy-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(b.tmp)

	source := sourceVersion(ctx, root)
	logf("building bench/backend")
	b.backendBin = filepath.Join(b.tmp, "backend")
	if err := goBuild(ctx, root, "./bench/backend", b.backendBin); err != nil {
		return nil, err
	}
	var skipped []string
	proxies := cfg.proxies
	if contains(proxies, tGunicornProxy) {
		if cfg.proxyBin != "" {
			b.proxyBin = cfg.proxyBin
		} else {
			logf("building ./cmd/gunicorn-proxy")
			b.proxyBin = filepath.Join(b.tmp, "gunicorn-proxy")
			if err := goBuild(ctx, root, "./cmd/gunicorn-proxy", b.proxyBin); err != nil {
				if cfg.smoke {
					return nil, err
				}
				msg := "gunicorn-proxy: it does not build: " + oneLine(err.Error())
				logf("%s", msg)
				skipped = append(skipped, msg)
				proxies = without(proxies, tGunicornProxy)
			}
		}
	}
	b.cfg.proxies = proxies

	var scs []scenario
	for _, name := range cfg.scenarios {
		sc, _ := scenarioByName(name)
		scs = append(scs, sc)
	}
	logf("%d round(s) x %d scenario(s) x %d proxies (%s)", cfg.rounds, len(scs), len(proxies), strings.Join(proxies, ", "))

	var runs []runResult
	for round := 1; round <= cfg.rounds; round++ {
		for _, sc := range scs {
			// A different proxy goes first in each round, so none always
			// runs on a machine warmed (or worn) by the others.
			for i := range proxies {
				t := proxies[(i+round-1)%len(proxies)]
				if !sc.runsAgainst(t) {
					continue
				}
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if cfg.quietWait > 0 {
					if busy, waited := waitQuiet(ctx, cfg.quietWait, 25); waited > time.Second {
						logf("waited %.0fs for a quiet machine (now %.0f%% busy)", waited.Seconds(), busy)
					}
				}
				t0 := time.Now()
				var r runResult
				if sc.memory {
					r = b.runMemory(ctx, sc, t, round)
				} else {
					r = b.runLoad(ctx, sc, t, round)
				}
				logf("round %d %-10s %-14s %s (%.0fs)", round, sc.name, t, brief(r), time.Since(t0).Seconds())
				runs = append(runs, r)
			}
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	var gb *goBenchResult
	if cfg.goBench {
		logf("go test -bench ./proxy/...")
		gb = runGoBench(ctx, root)
	}

	sums := summarize(runs, scs, proxies)
	cfgMap := map[string]any{
		"rounds": cfg.rounds, "duration": cfg.duration.String(), "warmup": cfg.warmup.String(),
		"hey_duration": cfg.heyDuration.String(), "workers": cfg.workers, "threads": cfg.threads,
		"connections": cfg.conns, "scenarios": cfg.scenarios, "proxies": proxies,
		"max_connections": maxConnections, "max_body_size": maxBodySize,
		"idle_conns": cfg.idleConns, "upload_clients": cfg.uploadClients, "readers": cfg.readers,
		"mem_hold": cfg.memHold.String(), "proxy_env": cfg.proxyEnv, "smoke": cfg.smoke,
		"quiet_wait": cfg.quietWait.String(),
	}
	rep := &report{
		Command:   cfg.command,
		Machine:   collectMachineInfo(ctx, b.tools),
		Config:    cfgMap,
		Skipped:   skipped,
		Runs:      runs,
		Summaries: sums,
		Goals:     evalGoals(sums, gb),
		GoBench:   gb,
	}
	rep.Machine.LoadStart, rep.Machine.LoadEnd = loadStart, loadAvg()
	rep.Machine.Source = source
	rep.Seconds = time.Since(started).Seconds()
	var md strings.Builder
	writeMarkdown(&md, rep, scs)
	stamp := time.Now().UTC().Format("20060102-150405")
	jp, mp, err := writeOutputs(cfg.out, stamp, rep, []byte(md.String()))
	if err != nil {
		return nil, err
	}
	if cfg.writeResults {
		p := filepath.Join(root, "bench", "RESULTS.md")
		if err := os.WriteFile(p, []byte(resultsPage(md.String())), 0o644); err != nil {
			return nil, err
		}
		logf("wrote %s", p)
	}
	return &outcome{report: rep, markdown: []byte(md.String()), jsonPath: jp, mdPath: mp}, nil
}

func without(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// brief is the one-line progress note for a run.
func brief(r runResult) string {
	var s string
	switch {
	case r.Wrk != nil:
		s = fmt.Sprintf("%.0f req/s p99 %s cpu %.1f µs/req rss %s errors %d, others used %.0f%% CPU", r.Wrk.RPS, fmtLatency(r.Wrk.P99us), r.CPUusPerReq, fmtMiB(r.PeakRSSKiB), r.Wrk.Errors, r.OtherCPUPct)
		if r.Hey != nil {
			s += fmt.Sprintf(" | hey %.0f req/s errors %d", r.Hey.RPS, r.Hey.Errors)
		}
	case r.Mem != nil && r.Scenario == "idle":
		s = fmt.Sprintf("%.2f KiB/conn (%s -> %s) open %d/%d errors %d", r.Mem.PerConnKiB, fmtMiB(r.Mem.BaselineKiB), fmtMiB(r.Mem.LoadedKiB), r.Mem.Completed, r.Mem.Clients, r.Mem.Errors)
	case r.Mem != nil:
		s = fmt.Sprintf("peak %s (from %s) completed %d/%d errors %d", fmtMiB(r.Mem.PeakKiB), fmtMiB(r.Mem.BaselineKiB), r.Mem.Completed, r.Mem.Clients, r.Mem.Errors)
	}
	if r.Error != "" {
		s += " ERROR: " + oneLine(r.Error)
	}
	return s
}
