package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// aptPackage maps each tool the bench runs to the Debian package that has it.
var aptPackage = map[string]string{
	"nginx":   "nginx",
	"haproxy": "haproxy",
	"wrk":     "wrk",
	"hey":     "hey",
}

// ensureTools finds each tool on PATH (or in /usr/sbin, where Debian puts
// nginx and haproxy). Missing ones are installed with apt-get when we are
// root on a Debian-like system; otherwise the error says what to install.
func ensureTools(ctx context.Context, tools []string) (map[string]string, error) {
	paths := map[string]string{}
	var missing []string
	for _, t := range tools {
		if p := lookTool(t); p != "" {
			paths[t] = p
		} else {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return paths, nil
	}
	var pkgs []string
	for _, t := range missing {
		pkgs = append(pkgs, aptPackage[t])
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		return nil, fmt.Errorf("missing %s: install them (Debian: apt-get install -y %s) and run again",
			strings.Join(missing, ", "), strings.Join(pkgs, " "))
	}
	logf("installing %s with apt-get", strings.Join(pkgs, " "))
	if err := aptInstall(ctx, pkgs); err != nil {
		return nil, err
	}
	for _, t := range missing {
		p := lookTool(t)
		if p == "" {
			return nil, fmt.Errorf("%s still missing after apt-get install %s", t, aptPackage[t])
		}
		paths[t] = p
	}
	return paths, nil
}

func lookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// aptInstall installs pkgs without starting their services: installing the
// nginx or haproxy package normally starts a system daemon, which the bench
// does not want running beside it. A policy-rc.d that says "no" is put in
// place for the install only, when none exists.
func aptInstall(ctx context.Context, pkgs []string) error {
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); os.IsNotExist(err) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\n# written by gunicorn-proxy bench during apt-get install; removed after\nexit 101\n"), 0o755); err == nil {
			defer os.Remove(policy)
		}
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if _, stderr, err := runBounded(ctx, "apt-get-update", []string{"apt-get", "update"}, env, "", 5*time.Minute); err != nil {
		return fmt.Errorf("apt-get update: %v\n%s", err, lastLines(stderr, 10))
	}
	argv := append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, pkgs...)
	if _, stderr, err := runBounded(ctx, "apt-get-install", argv, env, "", 10*time.Minute); err != nil {
		return fmt.Errorf("apt-get install %s: %v\n%s", strings.Join(pkgs, " "), err, lastLines(stderr, 10))
	}
	return nil
}

// moduleRoot finds the directory of go.mod (the repository root).
func moduleRoot(ctx context.Context) (string, error) {
	out, _, err := runBounded(ctx, "go-env", []string{"go", "env", "GOMOD"}, os.Environ(), "", time.Minute)
	if err != nil {
		return "", err
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the gunicorn-proxy module: run from the repository")
	}
	return filepath.Dir(gomod), nil
}

// goBuild builds pkg (e.g. ./cmd/gunicorn-proxy) into out.
func goBuild(ctx context.Context, root, pkg, out string) error {
	_, stderr, err := runBounded(ctx, "go-build", []string{"go", "build", "-o", out, pkg}, os.Environ(), root, 10*time.Minute)
	if err != nil {
		if len(stderr) > 0 && !strings.Contains(err.Error(), strings.TrimSpace(lastLines(stderr, 1))) {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, lastLines(stderr, 15))
		}
		return fmt.Errorf("go build %s: %v", pkg, err)
	}
	return nil
}

// raiseNofile lifts RLIMIT_NOFILE for the driver and so for every process it
// starts: 5000 idle clients plus the proxies' own sockets need far more than
// the usual 1024. Setting it explicitly also stops Go from restoring the old
// soft limit in children.
func raiseNofile() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	const want = 200000
	if lim.Max < want {
		// Raising the hard limit needs CAP_SYS_RESOURCE; containers often
		// lack it even for root. Then the hard limit is what we get.
		up := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			return want
		}
	}
	lim.Cur = min(lim.Max, want)
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}

// sourceVersion is the repository's commit, as git describe --always
// --dirty says, taken when the binaries are built.
func sourceVersion(ctx context.Context, root string) string {
	out, _, err := runBounded(ctx, "git-describe", []string{"git", "describe", "--always", "--dirty"}, os.Environ(), root, 10*time.Second)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// machineInfo describes where a run happened, for the report.
type machineInfo struct {
	Date     string            `json:"date"`
	Host     string            `json:"host"`
	NProc    int               `json:"nproc"`
	CPU      string            `json:"cpu"`
	Kernel   string            `json:"kernel"`
	MemTotal string            `json:"mem_total"`
	Go       string            `json:"go"`
	Versions map[string]string `json:"versions"`
	// The 1-minute load average when the run started and when it ended:
	// the cores are shared, and a busy machine shows here first.
	// Source is the repository's commit (git describe --always --dirty).
	Source    string `json:"source,omitempty"`
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
}

// loadAvg is the first field of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func collectMachineInfo(ctx context.Context, tools map[string]string) machineInfo {
	mi := machineInfo{
		Date:     time.Now().UTC().Format(time.RFC3339),
		NProc:    runtime.NumCPU(),
		Go:       runtime.Version(),
		Versions: map[string]string{},
	}
	mi.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		mi.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if i := strings.IndexByte(l, ':'); i >= 0 {
					mi.CPU = strings.TrimSpace(l[i+1:])
				}
				break
			}
		}
	}
	if v, ok := readKiB("/proc/meminfo", "MemTotal"); ok {
		mi.MemTotal = fmt.Sprintf("%.1f GiB", float64(v)/(1<<20))
	}
	version := func(name string, argv ...string) {
		out, stderr, _ := runBounded(ctx, name+"-version", argv, os.Environ(), "", 10*time.Second)
		s := strings.TrimSpace(string(out) + string(stderr))
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[:i]
		}
		if s != "" {
			mi.Versions[name] = s
		}
	}
	for name, p := range tools {
		switch name {
		case "nginx":
			version(name, p, "-v")
		case "haproxy":
			version(name, p, "-v")
		case "wrk":
			version(name, p, "-v")
		case "hey":
			if _, err := exec.LookPath("dpkg-query"); err == nil {
				version(name, "dpkg-query", "-W", "-f", "hey ${Version}", "hey")
			}
		}
	}
	return mi
}
