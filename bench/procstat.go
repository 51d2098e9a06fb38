package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"
	"sync"
	"time"
)

// What the bench reads about a proxy, all from /proc, summed over every
// process of its process group (nginx: master and workers; HAProxy and Go
// programs: one process).

// clkTck is USER_HZ, the unit of utime and stime in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports.
const clkTck = 100

// statFields returns the fields of /proc/PID/stat after the command name:
// [0] state, [1] ppid, [2] pgrp, ... [11] utime, [12] stime.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	f := bytes.Fields(b[i+1:])
	out := make([]string, len(f))
	for j := range f {
		out[j] = string(f[j])
	}
	return out
}

// groupPIDs lists the live processes whose process group is pgid.
func groupPIDs(pgid int) []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	var pids []int
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		f := statFields(pid)
		if len(f) < 13 || f[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// groupCPU is the user+system CPU time used so far by the group's live
// processes.
func groupCPU(pgid int) time.Duration {
	var ticks int64
	for _, pid := range groupPIDs(pgid) {
		f := statFields(pid)
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / clkTck
}

// readKiB returns the value in kB of the line "key:" in a /proc file.
func readKiB(path, key string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	k := []byte(key + ":")
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, k) {
			fs := bytes.Fields(line[len(k):])
			if len(fs) == 0 {
				return 0, false
			}
			v, err := strconv.ParseInt(string(fs[0]), 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// pssKiB is the process's proportional set size: its resident memory, with
// pages shared between processes (nginx's master and workers) divided among
// them rather than counted once per process. Falls back to VmRSS.
func pssKiB(pid int) int64 {
	p := "/proc/" + strconv.Itoa(pid)
	if v, ok := readKiB(p+"/smaps_rollup", "Pss"); ok {
		return v
	}
	v, _ := readKiB(p+"/status", "VmRSS")
	return v
}

// groupRSS is the group's resident memory in KiB (sum of PSS).
func groupRSS(pgid int) int64 {
	var sum int64
	for _, pid := range groupPIDs(pgid) {
		sum += pssKiB(pid)
	}
	return sum
}

// groupHWM is the sum of the group's VmHWM (peak RSS per process since start
// or since resetHWM), in KiB. Shared pages count once per process.
func groupHWM(pgid int) int64 {
	var sum int64
	for _, pid := range groupPIDs(pgid) {
		v, _ := readKiB("/proc/"+strconv.Itoa(pid)+"/status", "VmHWM")
		sum += v
	}
	return sum
}

// resetHWM resets VmHWM of the group's processes to their current RSS
// (Linux: echo 5 > /proc/PID/clear_refs). Best effort.
func resetHWM(pgid int) {
	for _, pid := range groupPIDs(pgid) {
		_ = os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
	}
}

// sampler polls a group's RSS and keeps the peak.
type sampler struct {
	mu   sync.Mutex
	peak int64
	stop chan struct{}
	done chan struct{}
}

func startSampler(pgid int, every time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			v := groupRSS(pgid)
			s.mu.Lock()
			if v > s.peak {
				s.peak = v
			}
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak in KiB.
func (s *sampler) Stop() int64 {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// machineCPU returns the busy and total CPU time of the whole machine so far
// (the "cpu" line of /proc/stat; idle and iowait are not busy).
func machineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return 0, 0
	}
	var sum, idle int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(string(v), 10, 64)
		switch i {
		case 8, 9: // guest, guest_nice: already in user and nice
			continue
		case 3, 4: // idle, iowait
			idle += n
		}
		sum += n
	}
	toDur := func(t int64) time.Duration { return time.Duration(t) * time.Second / clkTck }
	return toDur(sum - idle), toDur(sum)
}

// waitQuiet waits, up to limit, until the machine's CPU has been less than
// pct% busy for one second (between runs nothing of ours runs, so busy is
// other work). It returns the last busy share seen and how long it waited.
func waitQuiet(ctx context.Context, limit time.Duration, pct float64) (float64, time.Duration) {
	start := time.Now()
	var busy float64
	for {
		b0, t0 := machineCPU()
		select {
		case <-ctx.Done():
			return busy, time.Since(start)
		case <-time.After(time.Second):
		}
		b1, t1 := machineCPU()
		if t1 > t0 {
			busy = float64(b1-b0) / float64(t1-t0) * 100
		}
		if busy < pct || time.Since(start) >= limit {
			return busy, time.Since(start)
		}
	}
}
