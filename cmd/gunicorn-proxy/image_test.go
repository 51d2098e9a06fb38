package main

// The container image, without a Docker engine: the binary is built with
// the Dockerfile's own `go build` line and run the way the image runs it —
// as user 65532, in a root of its own holding only what distroless/static
// holds (chroot), in an empty working directory it cannot write to, with
// only /tmp writable (docker run --read-only --tmpfs /tmp), no shell, and
// the image's ENV. The Dockerfile's HEALTHCHECK command then runs the same
// way. This needs root, for chroot and the change of user; CI runs as root.

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dockerfile is what the test needs from the Dockerfile.
type dockerfile struct {
	buildEnv    []string // VAR=value before `go build`
	buildArgs   []string // after `go build`
	env         []string // ENV lines of the last stage
	user        string
	expose      []string
	entrypoint  []string
	healthcheck []string
	runtimeFrom string
}

func readDockerfile(t testing.TB, path string, args map[string]string) dockerfile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	var lines []string
	var cur strings.Builder
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\"))
			continue
		}
		cur.WriteString(l)
		if s := strings.TrimSpace(cur.String()); s != "" {
			lines = append(lines, s)
		}
		cur.Reset()
	}
	var d dockerfile
	stage := 0
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			stage++
			d.runtimeFrom = rest
			d.env, d.user, d.expose, d.entrypoint, d.healthcheck = nil, "", nil, nil, nil
		case "RUN":
			if !strings.Contains(rest, "go build") {
				continue
			}
			words := shellWords(t, expandArgs(t, rest, args))
			for len(words) > 0 && strings.Contains(words[0], "=") {
				d.buildEnv = append(d.buildEnv, words[0])
				words = words[1:]
			}
			if len(words) < 2 || words[0] != "go" || words[1] != "build" {
				t.Fatalf("Dockerfile: cannot read the build line %q", rest)
			}
			d.buildArgs = words[2:]
		case "ENV":
			d.env = append(d.env, strings.Fields(rest)...)
		case "USER":
			d.user = rest
		case "EXPOSE":
			d.expose = strings.Fields(rest)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &d.entrypoint); err != nil {
				t.Fatalf("Dockerfile: ENTRYPOINT must be in exec form (no shell in the image): %v", err)
			}
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(rest, "CMD ")
			if !ok || json.Unmarshal([]byte(cmd), &d.healthcheck) != nil {
				t.Fatalf("Dockerfile: HEALTHCHECK must be CMD in exec form (no shell in the image): %q", rest)
			}
		}
	}
	if stage != 2 || d.buildArgs == nil {
		t.Fatalf("Dockerfile: want a build stage and a runtime stage, and a go build line")
	}
	return d
}

// expandArgs substitutes ${NAME} from args; an unknown one fails.
func expandArgs(t testing.TB, s string, args map[string]string) string {
	t.Helper()
	return regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllStringFunc(s, func(m string) string {
		v, ok := args[m[2:len(m)-1]]
		if !ok {
			t.Fatalf("Dockerfile: the build line uses %s, which the test does not know", m)
		}
		return v
	})
}

// shellWords splits a command line as sh does for the simple quoting a
// Dockerfile build line uses: blanks, and "double quotes".
func shellWords(t testing.TB, s string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, c := range s {
		switch {
		case c == '"':
			quoted, inWord = !quoted, true
		case (c == ' ' || c == '\t') && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(c)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quotes in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// imageRoot is a directory laid out like the distroless/static image.
func imageRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	for dir, mode := range map[string]os.FileMode{
		"": 0o755, "etc": 0o755, "etc/ssl/certs": 0o755, "home/nonroot": 0o755, "tmp": 0o1777,
	} {
		p := filepath.Join(root, dir)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		// Owned by root: read-only to the image's user, but for /tmp.
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
		"etc/group":  "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n",
	}
	if ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		files["etc/ssl/certs/ca-certificates.crt"] = string(ca)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// inImage starts argv inside root as the image's user, with env only.
func inImage(t testing.TB, root string, uid, gid uint32, env []string, argv ...string) *child {
	t.Helper()
	p := &child{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	// exec.Command resolves the path on the host; inside the chroot it is
	// the image's path.
	p.cmd.Path = argv[0]
	p.cmd.Dir = "/home/nonroot"
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}},
		Setpgid:    true,
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %v in the image root: %v", argv, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// maxBinarySize keeps the image within 15 MB: distroless/static is about 2.
const maxBinarySize = 13 << 20

func TestRunsLikeTheImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs the binary as the image's user in a chroot, which needs root (CI runs as root)")
	}
	d := readDockerfile(t, "../../Dockerfile", map[string]string{
		"VERSION": "image-test", "TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH,
	})
	if !strings.HasPrefix(d.runtimeFrom, "gcr.io/distroless/static") {
		t.Errorf("runtime stage %q: this test lays out distroless/static", d.runtimeFrom)
	}
	if len(d.entrypoint) != 1 || d.healthcheck[0] != d.entrypoint[0] || len(d.expose) != 1 || d.expose[0] != strings.TrimPrefix(defaultListen, ":") {
		t.Fatalf("ENTRYPOINT %q, HEALTHCHECK %q, EXPOSE %q", d.entrypoint, d.healthcheck, d.expose)
	}
	var uid, gid uint32
	if _, err := fmt.Sscanf(d.user, "%d:%d", &uid, &gid); err != nil || uid == 0 {
		t.Fatalf("USER %q: want a numeric non-root uid:gid", d.user)
	}

	// Build as the Dockerfile does, into the image's root.
	root := imageRoot(t)
	exe := d.entrypoint[0]
	args := append([]string{"build"}, d.buildArgs...)
	for i, a := range args {
		if a == "-o" {
			args[i+1] = filepath.Join(root, exe)
		}
	}
	build := exec.Command("go", args...)
	build.Dir = "../.."
	build.Env = append(os.Environ(), d.buildEnv...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	checkStaticBinary(t, filepath.Join(root, exe))

	before := snapshot(t, root)
	g := startGunicorn(t, 2, "")
	// `docker run -p`: the ports the image uses inside its own network
	// namespace are free ports here.
	listen, admin := freeAddr(t), freeAddr(t)
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/home/nonroot", "HOSTNAME=gunicorn-proxy"}
	for _, kv := range d.env {
		if strings.HasPrefix(kv, "ADMIN_LISTEN=") {
			kv = "ADMIN_LISTEN=" + admin
		}
		env = append(env, kv)
	}
	env = append(env, "LISTEN="+listen, "SCHEME=https") // docker run -e SCHEME=https image app:8080

	if v := inImage(t, root, uid, gid, env, exe, "--version"); v.wait(t, 20*time.Second) != 0 || v.stdout.String() != "gunicorn-proxy image-test\n" {
		t.Errorf("--version: %q %q (the version is stamped by the build line)", v.stdout, v.stderr)
	}
	p := inImage(t, root, uid, gid, env, append(d.entrypoint, g.bind)...)
	waitListening(t, p, listen)

	if owner := processUID(t, p.cmd.Process.Pid); owner != fmt.Sprint(uid) {
		t.Errorf("the proxy runs as uid %s", owner)
	}
	resp, body := get(t, "http://"+listen+"/", "Host", "shop.example")
	if s := decodeSeen(t, body); resp.StatusCode != 200 || s.URL != "https://shop.example/" {
		t.Errorf("%d; the app built %q", resp.StatusCode, s.URL)
	}
	// Bodies over BUFFER_MEMORY both ways: spooled to BUFFER_DIR, the
	// image's /tmp, the one place the image's user may write.
	upload := bytes.Repeat([]byte("0123456789abcdef"), 512<<10/16)
	req, _ := http.NewRequest("POST", "http://"+listen+"/", bytes.NewReader(upload))
	if resp, body := do(t, req); resp.StatusCode != 200 || decodeSeen(t, body).BodyLength != len(upload) {
		t.Errorf("512 KiB upload: %d %s", resp.StatusCode, body)
	}
	want := bytes.Repeat(func() []byte {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}(), 2<<20/256)
	if resp, body := get(t, "http://"+listen+"/big/2"); resp.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Errorf("2 MiB download: %d, %d bytes, intact %v", resp.StatusCode, len(body), bytes.Equal(body, want))
	}

	health := func() (int, string) {
		h := inImage(t, root, uid, gid, env, d.healthcheck...)
		return h.wait(t, 20*time.Second), h.stdout.String() + h.stderr.String()
	}
	if code, out := health(); code != 0 {
		t.Errorf("HEALTHCHECK %q: exit %d: %s", d.healthcheck, code, out)
	}

	p.signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	if s := p.stderr.String(); strings.Contains(s, "denied") || strings.Contains(s, "read-only") {
		t.Errorf("the proxy tried to write outside /tmp:\n%s", s)
	}
	if code, out := health(); code != 1 {
		t.Errorf("HEALTHCHECK once the proxy has gone: exit %d: %s", code, out)
	}
	// Nothing was written but in /tmp.
	if after := snapshot(t, root); after != before {
		t.Errorf("the image's files changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// snapshot lists the files of the image outside /tmp, with size and time.
func snapshot(t testing.TB, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if path == filepath.Join(root, "tmp") {
			return filepath.SkipDir
		}
		fmt.Fprintf(&b, "%s %v %d %d\n", strings.TrimPrefix(path, root), info.Mode(), info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkStaticBinary: no interpreter, no shared library, no symbol table,
// and small enough for the image's budget.
func checkStaticBinary(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked (PT_INTERP)")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary is not stripped (-s -w)")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("binary: %d bytes (%.1f MiB), static, stripped", fi.Size(), float64(fi.Size())/(1<<20))
	if fi.Size() > maxBinarySize {
		t.Errorf("the binary is %d bytes: with distroless/static the image would pass 15 MB", fi.Size())
	}
}

// processUID is the real uid of pid, from /proc.
func processUID(t testing.TB, pid int) string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			return strings.Fields(rest)[0]
		}
	}
	return "?"
}
