package kube

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/integration/kubeenv"
)

// limitedRBAC lets ServiceAccount test/limited read what Rosen reads except Secrets.
const limitedRBAC = `apiVersion: v1
kind: Namespace
metadata: {name: test}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: limited, namespace: test}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: limited}
rules:
- apiGroups: [""]
  resources: [namespaces, services, pods]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: limited}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: limited}
subjects: [{kind: ServiceAccount, name: limited, namespace: test}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: test}
spec:
  ports: [{name: http, port: 9080}]
`

func slice(name, addr string) string {
	return fmt.Sprintf(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s
  namespace: test
  labels: {kubernetes.io/service-name: reviews}
addressType: IPv4
ports: [{name: http, port: 9080}]
endpoints: [{addresses: [%q]}]
`, name, addr)
}

func token(t *testing.T, cfg *rest.Config, ns, sa string) string {
	t.Helper()
	c, err := corev1client.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := c.ServiceAccounts(ns).CreateToken(context.Background(), sa, &authv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// TestSourceSurvivesForbiddenKindsAndDeadClusters: RBAC that forbids
// Secrets and Istio kinds that are not installed count as empty (reported in
// the cluster's status), a kubeconfig that points nowhere leaves its cluster
// Unreachable, and the working cluster's objects and changes still flow,
// also after its API server crashed and came back within the grace period
// (every watch dropped and re-established, nothing re-listed from scratch).
func TestSourceSurvivesForbiddenKindsAndDeadClusters(t *testing.T) {
	bin := kubeenv.Require(t)
	etcd := kubeenv.StartEtcd(t, bin)
	api := kubeenv.StartAPIServer(t, bin, etcd, "real")
	kubeenv.MustApply(t, api.Config(), limitedRBAC+"---\n"+slice("reviews-1", "10.0.0.1"))

	limited := api.ConfigWithToken(token(t, api.Config(), "test", "limited"))
	dead := &rest.Config{Host: "https://127.0.0.1:1", BearerToken: "x", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	src, err := New(Options{
		Clusters: []ClusterConfig{{ID: "real", REST: limited}, {ID: "nowhere", REST: dead}},
		Grace:    time.Minute, Probe: 200 * time.Millisecond, InitialSync: 3 * time.Second,
		Log: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	slices := runSource(t, src)
	waitFor(t, func() error {
		if got := slices(); got != "reviews-1@real" {
			return fmt.Errorf("slices %q", got)
		}
		return nil
	})
	kubeenv.MustApply(t, api.Config(), slice("reviews-2", "10.0.0.2"))
	waitFor(t, func() error {
		if got := slices(); got != "reviews-1@real,reviews-2@real" {
			return fmt.Errorf("slices %q", got)
		}
		return nil
	})
	waitFor(t, func() error {
		st := src.Clusters()
		if st[0].State != StateSynced || !strings.Contains(st[0].Kinds["Secret"], "forbidden") ||
			!strings.Contains(st[0].Kinds["VirtualService"], "could not find") && !strings.Contains(st[0].Kinds["VirtualService"], "not found") &&
				!strings.Contains(st[0].Kinds["VirtualService"], "forbidden") {
			return fmt.Errorf("real: %+v", st[0])
		}
		if st[1].State != StateUnreachable && st[1].State != StateDropped || st[1].Error == "" {
			return fmt.Errorf("nowhere: %+v", st[1])
		}
		return nil
	})

	api.Kill()
	waitFor(t, func() error {
		if st := src.Clusters()[0]; st.State != StateUnreachable {
			return fmt.Errorf("real: %s", st.State)
		}
		return nil
	})
	api.Start(t)
	kubeenv.MustApply(t, api.Config(), slice("reviews-3", "10.0.0.3"))
	waitFor(t, func() error {
		if got := slices(); got != "reviews-1@real,reviews-2@real,reviews-3@real" {
			return fmt.Errorf("slices %q", got)
		}
		if st := src.Clusters()[0]; st.State != StateSynced || st.Resyncs != 0 {
			return fmt.Errorf("real: %s after %d resyncs", st.State, st.Resyncs)
		}
		return nil
	})
}

func waitFor(t *testing.T, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runSource runs src until the test ends and returns a function listing the
// EndpointSlices of the last set it delivered ("a@c,b@c").
func runSource(t *testing.T, src *Source) func() string {
	t.Helper()
	var mu sync.Mutex
	var last *config.Set
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(s *config.Set, err error) {
			if err != nil {
				t.Errorf("source error: %v", err)
				return
			}
			mu.Lock()
			last = s
			mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		var names []string
		if last != nil {
			for _, o := range last.Objects {
				if o.Kind == config.KindEndpointSlice {
					names = append(names, o.Name)
				}
			}
		}
		return strings.Join(names, ",")
	}
}
