package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a process the bench started, in a process group of its own (PGID =
// its PID). The bench only ever signals that group, by number: never by name,
// never a process it did not start.
type proc struct {
	name    string
	pid     int
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once Wait has returned
	err     error         // Wait's result, valid after done
}

// live holds every proc not yet stopped, so that stopAll can end them on
// Ctrl-C, SIGTERM or a panic.
var live = struct {
	sync.Mutex
	m map[int]*proc
}{m: map[int]*proc{}}

// startProc starts argv in its own process group. stdout, if not nil,
// receives the standard output; everything else (and stdout when nil) goes to
// logPath, when set, or is discarded.
func startProc(name string, argv, env []string, dir, logPath string, stdout io.Writer) (*proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = dir
	var logf *os.File
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		logf = f
		cmd.Stderr = f
		cmd.Stdout = f
	}
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If the driver dies without cleaning up, its children go too.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		if logf != nil {
			logf.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, pid: cmd.Process.Pid, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	live.Lock()
	live.m[p.pid] = p
	live.Unlock()
	go func() {
		p.err = cmd.Wait()
		if logf != nil {
			logf.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process group: SIGTERM, then SIGKILL after grace. Members
// left behind by a leader that already exited (say, nginx workers) are
// killed too; while any member lives the PGID cannot be reused, so the
// signal reaches only our processes.
func (p *proc) stop(grace time.Duration) {
	if p == nil {
		return
	}
	if !p.exited() {
		_ = syscall.Kill(-p.pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
			<-p.done
		}
	}
	for i := 0; i < 50 && len(groupPIDs(p.pid)) > 0; i++ {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		time.Sleep(20 * time.Millisecond)
	}
	live.Lock()
	delete(live.m, p.pid)
	live.Unlock()
}

// stopAll stops every process the bench started and has not stopped yet.
func stopAll() {
	live.Lock()
	ps := make([]*proc, 0, len(live.m))
	for _, p := range live.m {
		ps = append(ps, p)
	}
	live.Unlock()
	for _, p := range ps {
		p.stop(2 * time.Second)
	}
}

// logTail returns the last lines of the process's log, for error messages.
func (p *proc) logTail() string {
	if p == nil || p.logPath == "" {
		return ""
	}
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return strings.TrimSpace(string(b))
}

// runBounded runs argv to completion, killing its group when ctx ends or
// timeout passes. It returns standard output and the log (standard error).
func runBounded(ctx context.Context, name string, argv, env []string, dir string, timeout time.Duration) (stdout, stderr []byte, err error) {
	stdout, stderr, _, err = runBoundedCPU(ctx, name, argv, env, dir, timeout)
	return stdout, stderr, err
}

// runBoundedCPU is runBounded that also returns the CPU time (user +
// system) the process used.
func runBoundedCPU(ctx context.Context, name string, argv, env []string, dir string, timeout time.Duration) (stdout, stderr []byte, cpu time.Duration, err error) {
	var out bytes.Buffer
	f, err := os.CreateTemp("", "bench-"+name+"-*.log")
	if err != nil {
		return nil, nil, 0, err
	}
	logPath := f.Name()
	f.Close()
	defer os.Remove(logPath)
	p, err := startProc(name, argv, env, dir, logPath, &out)
	if err != nil {
		return nil, nil, 0, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = fmt.Errorf("%s: still running after %v, stopped", name, timeout)
	}
	p.stop(2 * time.Second)
	if ps := p.cmd.ProcessState; ps != nil {
		cpu = ps.UserTime() + ps.SystemTime()
	}
	stderr, _ = os.ReadFile(logPath)
	if err == nil && p.err != nil {
		var ee *exec.ExitError
		if errors.As(p.err, &ee) {
			err = fmt.Errorf("%s: %v: %s", name, p.err, lastLines(stderr, 20))
		} else {
			err = fmt.Errorf("%s: %w", name, p.err)
		}
	}
	return out.Bytes(), stderr, cpu, err
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
