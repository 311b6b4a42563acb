package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runRosen(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(rosenBin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

func TestValidateExample(t *testing.T) {
	out, errOut, code := runRosen(t, repoRoot(), "validate", "examples/bookinfo")
	if code != 0 {
		t.Fatalf("validate examples/bookinfo: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("unexpected output %q", out)
	}
}

func TestValidateBadConfigExitsOne(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad.yaml"), `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - match:
    - uri:
        regex: "(unclosed"
    route:
    - destination:
        host: reviews
`)
	_, errOut, code := runRosen(t, dir, "validate", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "bad.yaml") || !strings.Contains(errOut, "VirtualService default/reviews") {
		t.Fatalf("error does not name file and resource:\n%s", errOut)
	}
}

// Every dump, SotW or delta, of every proxy kind, carries the same resources.
func TestDumpSotWAndDeltaAgree(t *testing.T) {
	r := startRosen(t, filepath.Join(repoRoot(), "examples", "bookinfo"))
	nodes := [][]string{
		{"--node", "router~10.0.0.1~gw.istio-system~istio-system.svc.cluster.local", "--labels", "istio=ingressgateway"},
		{"--node", "proxyless-client-1", "--proxyless"},
		{"--node", "sidecar~10.0.0.2~productpage-v1.default~default.svc.cluster.local", "--labels", "app=productpage"},
	}
	versions := regexp.MustCompile(`"(versionInfo|lastUpdated)":\s*"[^"]*",?`)
	for _, n := range nodes {
		args := append([]string{"xds", "dump", "--server", r.grpcAddr}, n...)
		sotw, errOut, code := runRosen(t, repoRoot(), args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", n, code, errOut)
		}
		delta, errOut, code := runRosen(t, repoRoot(), append(args, "--delta")...)
		if code != 0 {
			t.Fatalf("%v --delta: exit %d: %s", n, code, errOut)
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(sotw), &doc); err != nil {
			t.Fatalf("%v: dump is not JSON: %v\n%s", n, err, sotw)
		}
		if !strings.Contains(sotw, "outbound|9080|v2|reviews.default.svc.cluster.local") {
			t.Errorf("%v: dump lacks the reviews v2 cluster", n)
		}
		a, b := versions.ReplaceAllString(sotw, ""), versions.ReplaceAllString(delta, "")
		if a != b {
			t.Errorf("%v: SotW and delta dumps differ\nsotw:\n%s\ndelta:\n%s", n, a, b)
		}
	}
}

// A node the server refuses (a bad id) exits 1 with the reason and prints
// nothing on stdout: it printed an empty config_dump, which a script piping
// stdout reads as "no configuration".
func TestDumpOfARefusedNodePrintsNothing(t *testing.T) {
	r := startRosen(t, filepath.Join(repoRoot(), "examples", "bookinfo"))
	for _, node := range []string{"router~", "sidecar~1.2.3.4", "foo~bar"} {
		out, errOut, code := runRosen(t, repoRoot(), "xds", "dump", "--server", r.grpcAddr, "--node", node)
		if code != 1 || out != "" || !strings.Contains(errOut, "InvalidArgument") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", node, code, out, errOut)
		}
	}
}

// `rosen serve` with no flags, outside the repo, serves the built-in example.
func TestServeBuiltInExample(t *testing.T) {
	dir := t.TempDir()
	if _, err := os.Stat(filepath.Join(dir, "examples")); err == nil {
		t.Fatal("temp dir unexpectedly has examples/")
	}
	r := startRosenIn(t, dir, "")
	out, errOut, code := runRosen(t, dir, "status", "--http-addr", r.httpAddr)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "config: 1 accepted, 0 rejected") {
		t.Fatalf("status output:\n%s", out)
	}
}
