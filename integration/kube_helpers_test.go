package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/protobuf/types/known/structpb"
	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/rosenmesh/rosen/integration/kubeenv"
)

// applyManifests applies manifests/ as `kubectl apply -k manifests/` would
// (the files its kustomization lists), as the admin.
func applyManifests(t *testing.T, cfg *rest.Config) {
	t.Helper()
	dir := filepath.Join(repoRoot(), "manifests")
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.UnmarshalStrict(raw, &k, yaml.DisallowUnknownFields); err != nil {
		// kustomization has apiVersion/kind too: read leniently.
		if err := yaml.Unmarshal(raw, &k); err != nil {
			t.Fatal(err)
		}
	}
	var docs []string
	for _, r := range k.Resources {
		b, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			t.Fatalf("kustomization lists %s: %v", r, err)
		}
		docs = append(docs, string(b))
	}
	kubeenv.MustApply(t, cfg, strings.Join(docs, "\n---\n"))
}

// applyIstioCRDs installs Istio's CRDs from the istio.io/api module.
func applyIstioCRDs(t *testing.T, cfg *rest.Config) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
	if err != nil {
		t.Fatalf("go list istio.io/api: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kubeenv.MustApply(t, cfg, string(b))
}

// serviceAccountToken asks the API server for a token of rosen-system/rosen.
func serviceAccountToken(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	c, err := corev1client.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	exp := int64(3600)
	tr, err := c.ServiceAccounts("rosen-system").CreateToken(context.Background(), "rosen",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// startRosenArgs runs `rosen serve` with extra arguments (and no --config).
func startRosenArgs(t *testing.T, extra ...string) *rosen {
	t.Helper()
	return startRosenIn(t, "", "", extra...)
}

// startBackendOn is startBackend on a given local address.
func startBackendOn(t *testing.T, host *kubeenv.TestHost, name string) *backend {
	t.Helper()
	ln := host.Listen(t)
	b := &backend{name: name, port: ln.Addr().(*net.TCPAddr).Port}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, b)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return b
}

// selfSigned returns a PEM certificate and key for host.
func selfSigned(t *testing.T, host string, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// tlsSecret is a kubernetes.io/tls Secret as YAML.
func tlsSecret(ns, name string, cert, key []byte) string {
	indent := func(b []byte) string { return strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n    ") }
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: %s, namespace: %s}
type: kubernetes.io/tls
stringData:
  tls.crt: |
    %s
  tls.key: |
    %s
`, name, ns, indent(cert), indent(key))
}

// sdsStream is one gateway's long-lived ADS stream subscribed to one secret.
type sdsStream struct {
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	name   string
	node   *corev3.Node
}

const secretType = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

func openSDS(t *testing.T, r *rosen, secretName string) *sdsStream {
	t.Helper()
	cc, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := structpb.NewStruct(map[string]any{"LABELS": map[string]any{"istio": "ingressgateway"}, "NAMESPACE": "istio-system"})
	s := &sdsStream{stream: st, name: secretName, node: &corev3.Node{
		Id: "router~10.0.0.1~gw-1.istio-system~istio-system.svc.cluster.local", Metadata: md,
	}}
	if err := st.Send(&discoveryv3.DiscoveryRequest{Node: s.node, TypeUrl: secretType, ResourceNames: []string{secretName}}); err != nil {
		t.Fatal(err)
	}
	return s
}

// next waits for the next response on the stream, ACKs it and returns the
// secret's certificate chain.
func (s *sdsStream) next(t *testing.T) []byte {
	t.Helper()
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			t.Fatalf("SDS stream: %v", err)
		}
		if err := s.stream.Send(&discoveryv3.DiscoveryRequest{Node: s.node, TypeUrl: secretType, ResourceNames: []string{s.name},
			VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}); err != nil {
			t.Fatal(err)
		}
		for _, a := range resp.GetResources() {
			var sec tlsv3.Secret
			if err := a.UnmarshalTo(&sec); err != nil {
				t.Fatal(err)
			}
			if sec.GetName() == s.name {
				return sec.GetTlsCertificate().GetCertificateChain().GetInlineBytes()
			}
		}
	}
}

// getStatus reads an object's status through the dynamic client.
func getStatus(t *testing.T, cfg *rest.Config, obj *unstructured.Unstructured) map[string]any {
	t.Helper()
	a, err := kubeenv.NewApplier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Get(context.Background(), obj)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := got.Object["status"].(map[string]any)
	return st
}
