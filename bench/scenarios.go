package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// A scenario is one kind of traffic. Load scenarios are driven by wrk (and
// cross-checked by hey) and report throughput, latency and CPU; memory
// scenarios are raw TCP clients in this program and report resident memory.
type scenario struct {
	name     string
	title    string
	memory   bool
	method   string
	path     string
	bodySize int  // request body, bytes
	newConn  bool // Connection: close on every request
	// acceptEncoding is sent as Accept-Encoding by wrk and hey.
	acceptEncoding string
	// compress turns compression on in the proxies (gunicorn-proxy's
	// defaults, COMPRESS=on at level 5; nginx gzip on, gzip_comp_level 5);
	// every other scenario runs with it off in both.
	compress bool
	// targets, when set, are the only proxies the scenario runs against.
	targets []string
}

var scenarios = []scenario{
	{name: "small", title: "small GET (~100 B), keep-alive", method: "GET", path: "/small"},
	{name: "64k", title: "64 KiB GET, keep-alive", method: "GET", path: "/64k"},
	{name: "post16k", title: "16 KiB POST, keep-alive", method: "POST", path: "/post", bodySize: 16 << 10},
	{name: "newconn", title: "small GET, new TCP connection per request", method: "GET", path: "/small", newConn: true},
	{name: "idle", title: "RSS per idle keep-alive connection", memory: true},
	{name: "slowupload", title: "peak RSS, slow 1 MiB uploads", memory: true},
	{name: "slowread", title: "peak RSS, slow readers of 32 MiB", memory: true},
	// Compression (issue 8), after the others so their indices stay put.
	{name: "json64k", title: "64 KiB JSON GET, client accepts gzip, compression off", method: "GET", path: "/json64k",
		acceptEncoding: "gzip"},
	{name: "json64k-gzip", title: "64 KiB JSON GET, gzip level 5 by the proxy", method: "GET", path: "/json64k",
		acceptEncoding: "gzip", compress: true,
		// HAProxy's compression has no level 5 to match (it is set by
		// tune.comp.maxlevel, and slz has none): not compared here.
		targets: []string{tGunicornProxy, tNginx, tDirect}},
}

// runsAgainst reports whether the scenario is run against target.
func (sc scenario) runsAgainst(target string) bool {
	return sc.targets == nil || contains(sc.targets, target)
}

func scenarioByName(name string) (scenario, bool) {
	for _, s := range scenarios {
		if s.name == name {
			return s, true
		}
	}
	return scenario{}, false
}

// runResult is one scenario against one target in one round.
type runResult struct {
	Scenario string      `json:"scenario"`
	Target   string      `json:"proxy"`
	Round    int         `json:"round"`
	Error    string      `json:"error,omitempty"`
	Wrk      *loadResult `json:"wrk,omitempty"`
	Hey      *loadResult `json:"hey,omitempty"`
	// CPU of the measured process group (the proxy; the backend for direct)
	// during the wrk run.
	CPUSeconds  float64 `json:"cpu_seconds,omitempty"`
	CPUusPerReq float64 `json:"cpu_us_per_req,omitempty"`
	// The backend's CPU per request, for reference.
	BackendCPUusPerReq float64 `json:"backend_cpu_us_per_req,omitempty"`
	// PeakRSSKiB is the highest sum of PSS over the group, sampled every
	// 100 ms; PeakHWMKiB is the sum of VmHWM (reset at the start of the
	// measured phase; shared pages count once per process).
	// OtherCPUPct is the share of the machine's CPU time that processes
	// other than the proxy, the backend and wrk used during the wrk run.
	OtherCPUPct float64    `json:"other_cpu_pct"`
	PeakRSSKiB  int64      `json:"peak_rss_kib,omitempty"`
	PeakHWMKiB  int64      `json:"peak_hwm_kib,omitempty"`
	Mem         *memResult `json:"memory,omitempty"`
	Profiles    []string   `json:"profiles,omitempty"`
}

// runLoad runs a load scenario against a fresh instance of target.
func (b *bench) runLoad(ctx context.Context, sc scenario, target string, round int) runResult {
	res := runResult{Scenario: sc.name, Target: target, Round: round}
	dir, err := os.MkdirTemp(b.tmp, fmt.Sprintf("%s-%s-r%d-", sc.name, target, round))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer os.RemoveAll(dir)
	prof := b.profiling(target, round)
	in, err := b.startInstance(ctx, sc, target, dir, prof)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer in.stop()
	url := "http://" + in.addr + sc.path
	if sc.compress && target != tDirect {
		// A proxy that silently sends identity would look fast here.
		if enc, err := contentEncoding(in.addr, sc.path, sc.acceptEncoding); err != nil || enc != "gzip" {
			res.Error = fmt.Sprintf("%s did not compress %s (Content-Encoding %q, %v)", target, sc.path, enc, err)
			return res
		}
	}

	if b.cfg.warmup > 0 {
		if _, _, err := b.runWrk(ctx, sc, url, dir, b.cfg.warmup); err != nil {
			res.Error = "warm-up: " + err.Error()
			return res
		}
	}

	m := in.measured().pid
	cpu0, bcpu0 := groupCPU(m), groupCPU(in.backend.pid)
	resetHWM(m)
	smp := startSampler(m, 100*time.Millisecond)
	var cpuProf chan string
	if prof && b.cfg.cpuprofile != "" {
		cpuProf = make(chan string, 1)
		secs := int(b.cfg.duration/time.Second) - 1
		go func() { cpuProf <- b.fetchCPUProfile(ctx, in, sc, secs) }()
	}
	busy0, total0 := machineCPU()
	w, wrkCPU, err := b.runWrk(ctx, sc, url, dir, b.cfg.duration)
	busy1, total1 := machineCPU()
	res.PeakRSSKiB = smp.Stop()
	res.PeakHWMKiB = groupHWM(m)
	cpu1, bcpu1 := groupCPU(m), groupCPU(in.backend.pid)
	// Whatever busy CPU time is not ours (proxy, backend, wrk) was other
	// work competing for the cores: the noise of this run.
	ours := (cpu1 - cpu0) + wrkCPU
	if target != tDirect {
		ours += bcpu1 - bcpu0
	}
	if total1 > total0 {
		res.OtherCPUPct = max(0, float64(busy1-busy0-ours)/float64(total1-total0)*100)
	}
	if cpuProf != nil {
		if p := <-cpuProf; p != "" {
			res.Profiles = append(res.Profiles, p)
		}
	}
	if prof && b.cfg.memprofile != "" {
		if p := b.fetchHeapProfile(ctx, in, sc); p != "" {
			res.Profiles = append(res.Profiles, p)
		}
	}
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Wrk = &w
	res.CPUSeconds = (cpu1 - cpu0).Seconds()
	if w.Requests > 0 {
		res.CPUusPerReq = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(w.Requests)
		res.BackendCPUusPerReq = float64(bcpu1-bcpu0) / float64(time.Microsecond) / float64(w.Requests)
	}
	if target == tDirect {
		// The measured process is the backend itself.
		res.BackendCPUusPerReq = res.CPUusPerReq
	}

	if b.cfg.heyDuration > 0 {
		h, err := b.runHey(ctx, sc, url, dir, b.cfg.heyDuration)
		if err != nil {
			res.Error = "hey: " + err.Error()
			return res
		}
		res.Hey = &h
	}
	return res
}
