// Package kubeenv runs real Kubernetes API servers for tests: one etcd and
// any number of kube-apiservers on it, each with its own --etcd-prefix (so
// each is a separate cluster), on loopback ports. The binaries are built from
// the Go module proxy by build.sh into a cache folder; without them a test
// is skipped with a clear message, and under CI=true it fails.
package kubeenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the Kubernetes release build.sh builds.
const Version = "v1.37.2"

// ErrNoBinaries is returned when etcd or kube-apiserver cannot be found.
var ErrNoBinaries = errors.New("kubeenv: etcd and kube-apiserver not found")

// BinDir finds the folder holding etcd and kube-apiserver: $ROSEN_KUBE_BIN,
// $KUBEBUILDER_ASSETS, or build.sh's cache folder.
func BinDir() (string, error) {
	var dirs []string
	for _, env := range []string{"ROSEN_KUBE_BIN", "KUBEBUILDER_ASSETS"} {
		if d := os.Getenv(env); d != "" {
			dirs = append(dirs, d)
		}
	}
	if cache, err := os.UserCacheDir(); err == nil {
		dirs = append(dirs, filepath.Join(cache, "rosen-kube", Version))
	}
	for _, d := range dirs {
		if isExec(filepath.Join(d, "etcd")) && isExec(filepath.Join(d, "kube-apiserver")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w in %s; build them with integration/kubeenv/build.sh (≈12 min once)", ErrNoBinaries, strings.Join(dirs, ", "))
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Require returns the binaries' folder, or skips the test (fails under CI=true).
func Require(t testing.TB) string {
	t.Helper()
	dir, err := BinDir()
	if err == nil {
		return dir
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v (.ci/run builds them before the tests)", err)
	}
	t.Skipf("skipping: %v", err)
	return ""
}

// freePort asks the kernel for a loopback port.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// process is a child process that can be stopped and started again with the same arguments.
type process struct {
	name string
	bin  string
	args []string
	log  *os.File

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *process) start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
}

// take detaches the running process (nil when none) for kill or stop.
func (p *process) take() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	return cmd, done
}

// kill ends the process at once, as a crash or a lost machine would.
func (p *process) kill() {
	if cmd, done := p.take(); cmd != nil {
		_ = cmd.Process.Kill()
		<-done
	}
}

// stop sends SIGTERM and waits (SIGKILL after 10 s).
func (p *process) stop() {
	cmd, done := p.take()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// tail returns the end of the process's log, for failure messages.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log.Name())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Etcd is a single-member etcd on loopback.
type Etcd struct {
	URL  string
	proc *process
}

// StartEtcd starts etcd in a temporary folder; it stops with the test.
func StartEtcd(t testing.TB, binDir string) *Etcd {
	t.Helper()
	dir := t.TempDir()
	client, peer := freePort(t), freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", client)
	log, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &process{name: "etcd", bin: filepath.Join(binDir, "etcd"), log: log, args: []string{
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", url, "--advertise-client-urls", url,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-cluster", fmt.Sprintf("default=http://127.0.0.1:%d", peer),
		"--name", "default", "--log-level", "error", "--quota-backend-bytes", "2147483648",
		"--unsafe-no-fsync",
	}}
	p.start(t)
	t.Cleanup(p.stop)
	e := &Etcd{URL: url, proc: p}
	waitFor(t, 30*time.Second, p, func() error {
		resp, err := http.Get(url + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("etcd /health: %s", resp.Status)
		}
		return nil
	})
	return e
}

func waitFor(t testing.TB, timeout time.Duration, p *process, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s: %v\n%s", p.name, timeout, err, p.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeServiceAccountKey writes an RSA key pair for signing ServiceAccount tokens.
func writeServiceAccountKey(t testing.TB, dir string) (pub, priv string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv = filepath.Join(dir, "sa.pub"), filepath.Join(dir, "sa.key")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(priv, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// insecureGet is for readiness polling only (the server's certificate is
// not known until it has started).
func insecureGet(ctx context.Context, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec G402 -- loopback readiness probe
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
