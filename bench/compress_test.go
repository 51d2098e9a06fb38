package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The compression scenarios: nginx's config gets gzip at level 5 only for
// json64k-gzip, gunicorn-proxy's environment says the same, wrk sends
// Accept-Encoding, and HAProxy is left out of the compressed comparison.
func TestCompressionScenarios(t *testing.T) {
	plain, ok1 := scenarioByName("json64k")
	gz, ok2 := scenarioByName("json64k-gzip")
	if !ok1 || !ok2 {
		t.Fatal("json64k scenarios missing")
	}
	if plain.compress || !gz.compress || plain.acceptEncoding != "gzip" || gz.acceptEncoding != "gzip" {
		t.Errorf("scenarios %+v %+v", plain, gz)
	}
	if gz.runsAgainst(tHAProxy) || !gz.runsAgainst(tNginx) || !gz.runsAgainst(tGunicornProxy) || !plain.runsAgainst(tHAProxy) {
		t.Error("targets of the compression scenarios")
	}
	if got := strings.Join(compressEnv(gz), " "); got != "COMPRESS=on COMPRESS_LEVEL=5 COMPRESS_MIN_LENGTH=256" {
		t.Errorf("gunicorn-proxy env %q", got)
	}
	if got := strings.Join(compressEnv(plain), " "); got != "COMPRESS=off" {
		t.Errorf("gunicorn-proxy env %q", got)
	}
	if !strings.Contains(wrkScript(gz), `wrk.headers["Accept-Encoding"] = "gzip"`) {
		t.Errorf("wrk script:\n%s", wrkScript(gz))
	}

	for _, on := range []bool{false, true} {
		dir := t.TempDir()
		d := configData{Dir: dir, Port: 18080, BackendPort: 18081, Workers: 2, MaxConn: 9000,
			WorkerConnections: 10240, RlimitNofile: 20000, MaxBody: maxBodySize, MaxBodyBytes: maxBodyBytes,
			Root: os.Geteuid() == 0, Gzip: on}
		ng, err := renderConfig("nginx.conf.tmpl", dir, "nginx.conf", d)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(ng)
		if got := strings.Contains(string(b), "gzip_comp_level 5;"); got != on {
			t.Errorf("Gzip %v: gzip_comp_level in the config: %v", on, got)
		}
		if p := lookTool("nginx"); p != "" {
			out, err := exec.Command(p, "-t", "-p", dir+"/", "-e", filepath.Join(dir, "error.log"), "-c", ng, "-g", "daemon off;").CombinedOutput()
			if err != nil {
				t.Errorf("nginx -t with Gzip %v: %v\n%s", on, err, out)
			}
		}
	}
}
