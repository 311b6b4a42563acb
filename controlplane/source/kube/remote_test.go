package kube

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/rosenmesh/rosen/integration/kubeenv"
)

// TestRemoteSecretsAddAndRemoveClusters: a Secret in the primary holding
// cluster B's kubeconfig (as `istioctl create-remote-secret` writes it)
// adds B's endpoints to the mesh at run time; deleting it removes them.
func TestRemoteSecretsAddAndRemoveClusters(t *testing.T) {
	bin := kubeenv.Require(t)
	etcd := kubeenv.StartEtcd(t, bin)
	a := kubeenv.StartAPIServer(t, bin, etcd, "primary")
	b := kubeenv.StartAPIServer(t, bin, etcd, "remote")
	kubeenv.MustApply(t, a.Config(), "apiVersion: v1\nkind: Namespace\nmetadata: {name: rosen-system}\n")
	kubeenv.MustApply(t, b.Config(), limitedRBAC+"---\n"+slice("reviews-b", "10.0.0.9"))

	src, err := New(Options{
		Clusters: []ClusterConfig{{ID: "primary", REST: a.Config()}}, RemoteSecretNamespace: "rosen-system",
		Probe: 200 * time.Millisecond, InitialSync: 3 * time.Second, Debounce: 20 * time.Millisecond, Log: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	slices := runSource(t, src)

	kc, err := os.ReadFile(b.WriteKubeconfig(t, t.TempDir(), kubeenv.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	core, err := corev1client.NewForConfig(a.Config())
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-remote-secret-b", Namespace: "rosen-system", Labels: map[string]string{LabelMultiCluster: "true"}},
		Data:       map[string][]byte{"cluster-b": kc},
	}
	if _, err := core.Secrets("rosen-system").Create(context.Background(), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() error {
		if got := slices(); got != "reviews-b@cluster-b" {
			return fmt.Errorf("slices %q", got)
		}
		return nil
	})
	if st := src.Clusters(); len(st) != 2 || st[1].ID != "cluster-b" || st[1].Origin != "secret rosen-system/istio-remote-secret-b" || st[1].Config {
		t.Fatalf("clusters %+v", st)
	}
	if err := core.Secrets("rosen-system").Delete(context.Background(), secret.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() error {
		if got := slices(); got != "" || len(src.Clusters()) != 1 {
			return fmt.Errorf("slices %q, %d clusters", got, len(src.Clusters()))
		}
		return nil
	})
}
