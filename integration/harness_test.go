// Package integration runs Rosen as users do — the real `rosen` binary on a
// config folder — and drives it with real xDS clients (grpc-go's xds package
// and `rosen xds dump`) against real gRPC backends on loopback.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/xds"
)

var rosenBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rosen-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rosenBin = filepath.Join(dir, "rosen")
	build := exec.Command("go", "build", "-o", rosenBin, "./cmd/rosen")
	build.Dir = repoRoot()
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building rosen:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// samplesDir is Istio's bookinfo networking files, kept outside the repo.
func samplesDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(repoRoot(), "..", "shared", "samples", "istio-bookinfo")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Istio samples missing under CI: %v", err)
		}
		t.Skipf("Istio samples not found at %s", dir)
	}
	return dir
}

func copySample(t *testing.T, dstDir, name string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(samplesDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dstDir, name), string(data))
}

// writeFile replaces a file atomically (write to a temp name, then rename), as editors and kubectl-like tools do.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// rosen is one running `rosen serve` process.
type rosen struct {
	grpcAddr, httpAddr string
	logs               *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startRosen(t *testing.T, configDir string) *rosen {
	t.Helper()
	return startRosenIn(t, "", configDir)
}

// startRosenIn runs `rosen serve` in workDir; an empty configDir leaves --config at its default.
// The ports are picked free and then bound by the child, so another process
// can take one in between: a start that fails on "address already in use"
// is tried again on new ports (twice at most).
func startRosenIn(t *testing.T, workDir, configDir string, extra ...string) *rosen {
	t.Helper()
	for attempt := 1; ; attempt++ {
		r, exitLogs := tryStartRosen(t, workDir, configDir, extra...)
		if r != nil {
			return r
		}
		if attempt == 3 || !strings.Contains(exitLogs, "address already in use") {
			t.Fatalf("rosen exited before it was ready:\n%s", exitLogs)
		}
	}
}

// tryStartRosen starts rosen and waits until it is ready (the rosen) or has
// exited (nil and its logs).
func tryStartRosen(t *testing.T, workDir, configDir string, extra ...string) (*rosen, string) {
	t.Helper()
	r := &rosen{grpcAddr: freeAddr(t), httpAddr: freeAddr(t), logs: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	args := []string{"serve", "--grpc-addr", r.grpcAddr, "--http-addr", r.httpAddr,
		"--data", t.TempDir(), "--log-format", "json", "--debounce", "100ms"}
	if configDir != "" {
		args = append(args, "--config", configDir)
	}
	args = append(args, extra...)
	cmd := exec.CommandContext(ctx, rosenBin, args...)
	cmd.Dir = workDir
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("rosen logs:\n%s", r.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return nil, r.logs.String()
		default:
		}
		resp, err := http.Get("http://" + r.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, ""
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("rosen not ready after 60s (last: %v)\n%s", err, r.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// getJSON fetches a console endpoint into out.
func (r *rosen) getJSON(t *testing.T, path string, out any) {
	t.Helper()
	resp, err := http.Get("http://" + r.httpAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// configErrors returns the messages of the current config rejection.
func (r *rosen) configErrors(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Errors []struct {
			Source struct {
				File string `json:"file"`
			} `json:"source"`
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	r.getJSON(t, "/debug/config-errors", &doc)
	var out []string
	for _, e := range doc.Errors {
		out = append(out, filepath.Base(e.Source.File)+": "+e.Field+": "+e.Message)
	}
	return out
}

// backend is a gRPC server that answers TestService.UnaryCall with its name
// ("reviews-v2"), so a client can tell where its call went.
type backend struct {
	testgrpc.UnimplementedTestServiceServer
	name string
	port int
	mu   sync.Mutex
	hits int
}

func (b *backend) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	b.mu.Lock()
	b.hits++
	b.mu.Unlock()
	return &testgrpc.SimpleResponse{Hostname: b.name}, nil
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, port: ln.Addr().(*net.TCPAddr).Port}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, b)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return b
}

// bookinfoBackends starts one backend per bookinfo workload and writes the
// Services and EndpointSlices that describe them (Istio's samples describe
// routes and subsets; this file says where the workloads are).
func bookinfoBackends(t *testing.T, dir string) map[string]*backend {
	t.Helper()
	workloads := []struct{ svc, version string }{
		{"productpage", "v1"}, {"details", "v1"}, {"ratings", "v1"},
		{"reviews", "v1"}, {"reviews", "v2"}, {"reviews", "v3"},
	}
	backends := map[string]*backend{}
	var b strings.Builder
	services := map[string]bool{}
	for _, w := range workloads {
		be := startBackend(t, w.svc+"-"+w.version)
		backends[be.name] = be
		if !services[w.svc] {
			services[w.svc] = true
			fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: default
spec:
  ports:
  - name: grpc
    port: 9080
---
`, w.svc)
		}
		fmt.Fprintf(&b, `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s-%s
  namespace: default
  labels:
    kubernetes.io/service-name: %s
    version: %s
addressType: IPv4
ports:
- name: grpc
  port: %d
endpoints:
- addresses: ["127.0.0.1"]
  zone: zone-a
---
`, w.svc, w.version, w.svc, w.version, be.port)
	}
	writeFile(t, filepath.Join(dir, "workloads.yaml"), b.String())
	return backends
}

// xdsClient is a proxyless gRPC client bootstrapped against a Rosen.
type xdsClient struct {
	conns map[string]*grpc.ClientConn
	res   resolver.Builder
}

func newXDSClient(t *testing.T, r *rosen, nodeID string) *xdsClient {
	t.Helper()
	bootstrap := fmt.Sprintf(`{
  "xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
  "node": {"id": %q, "metadata": {"GENERATOR": "grpc", "NAMESPACE": "default"}, "locality": {}}
}`, r.grpcAddr, nodeID)
	res, err := xds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	c := &xdsClient{conns: map[string]*grpc.ClientConn{}, res: res}
	t.Cleanup(func() {
		for _, cc := range c.conns {
			cc.Close()
		}
	})
	return c
}

// call makes one UnaryCall to target (e.g. "reviews.default.svc.cluster.local:9080")
// with the given metadata and returns the backend's name.
func (c *xdsClient) call(t *testing.T, target string, md ...string) (string, error) {
	t.Helper()
	cc, ok := c.conns[target]
	if !ok {
		var err error
		cc, err = grpc.NewClient("xds:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(c.res))
		if err != nil {
			t.Fatal(err)
		}
		c.conns[target] = cc
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if len(md) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, md...)
	}
	resp, err := testgrpc.NewTestServiceClient(cc).UnaryCall(ctx, &testgrpc.SimpleRequest{})
	if err != nil {
		return "", err
	}
	return resp.GetHostname(), nil
}

// eventually retries check until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
