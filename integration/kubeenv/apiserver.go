package kubeenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// AdminToken is the static token of the admin user (group system:masters).
const AdminToken = "rosen-test-admin-token"

// APIServer is one kube-apiserver: one cluster.
type APIServer struct {
	// Name is the cluster's name in its kubeconfig (and so Rosen's default cluster id).
	Name string
	URL  string
	// CAFile verifies the server's certificate (its self-signed bundle).
	CAFile string
	proc   *process
	dir    string
}

// StartAPIServer starts a kube-apiserver storing under /<name> in etcd,
// with RBAC authorization (the admin token bypasses it), a ServiceAccount
// token signer, and no controllers: tests create EndpointSlices themselves.
// It stops with the test.
func StartAPIServer(t testing.TB, binDir string, etcd *Etcd, name string) *APIServer {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	pub, priv := writeServiceAccountKey(t, dir)
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(AdminToken+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "apiserver.log"))
	if err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(dir, "certs")
	a := &APIServer{Name: name, URL: fmt.Sprintf("https://127.0.0.1:%d", port), CAFile: filepath.Join(certDir, "apiserver.crt"), dir: dir}
	a.proc = &process{name: "kube-apiserver " + name, bin: filepath.Join(binDir, "kube-apiserver"), log: log, args: []string{
		"--etcd-servers", etcd.URL, "--etcd-prefix", "/" + name,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(port), "--cert-dir", certDir,
		"--endpoint-reconciler-type", "none",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", pub, "--service-account-signing-key-file", priv,
		"--token-auth-file", tokens,
		"--authorization-mode", "RBAC",
		"--service-cluster-ip-range", "10.96.0.0/16",
		// No controller-manager creates the "default" ServiceAccount.
		"--disable-admission-plugins", "ServiceAccount",
		"--enable-priority-and-fairness=false",
		"--watch-cache=true",
		"-v", "0",
	}}
	a.Start(t)
	t.Cleanup(a.Stop)
	return a
}

// Start (re)starts the server on its port and waits until it is ready.
func (a *APIServer) Start(t testing.TB) {
	t.Helper()
	a.proc.start(t)
	waitFor(t, 60*time.Second, a.proc, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		code, err := insecureGet(ctx, a.URL+"/readyz", AdminToken)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/readyz: %d", code)
		}
		return nil
	})
}

// Stop stops the server (its data stays in etcd).
func (a *APIServer) Stop() { a.proc.stop() }

// Kill ends the server at once, as a crash would (its data stays in etcd).
func (a *APIServer) Kill() { a.proc.kill() }

// Config is an admin client configuration.
func (a *APIServer) Config() *rest.Config {
	return a.ConfigWithToken(AdminToken)
}

// ConfigWithToken is a client configuration authenticating with token.
func (a *APIServer) ConfigWithToken(token string) *rest.Config {
	return &rest.Config{
		Host: a.URL, BearerToken: token, QPS: 200, Burst: 400,
		TLSClientConfig: rest.TLSClientConfig{CAFile: a.CAFile},
	}
}

// WriteKubeconfig writes a kubeconfig for token (cluster and context named
// a.Name) and returns its path.
func (a *APIServer) WriteKubeconfig(t testing.TB, dir, token string) string {
	t.Helper()
	path := filepath.Join(dir, a.Name+".kubeconfig")
	doc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority: %[3]s
users:
- name: %[1]s-user
  user:
    token: %[4]s
contexts:
- name: %[1]s
  context: {cluster: %[1]s, user: %[1]s-user}
current-context: %[1]s
`, a.Name, a.URL, a.CAFile, token)
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
