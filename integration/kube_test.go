package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	discoveryv1client "k8s.io/client-go/kubernetes/typed/discovery/v1"

	"github.com/rosenmesh/rosen/integration/kubeenv"
)

// clusterB's workloads: three gRPC backends on loopback, each a Pod with a
// version label and an EndpointSlice pointing at it.
func clusterBWorkloads(ip string, ports [3]int) string {
	var b strings.Builder
	b.WriteString(`apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: shop}
spec:
  ports: [{name: grpc, port: 9080}]
`)
	versions := []string{"v1", "v2", "v2"}
	for i, p := range ports {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Pod
metadata: {name: backend-%[1]d, namespace: shop, labels: {app: backend, version: %[2]s}}
spec:
  containers: [{name: app, image: example.invalid/backend}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: backend-%[1]d
  namespace: shop
  labels: {kubernetes.io/service-name: backend}
addressType: IPv4
ports: [{name: grpc, port: %[3]d}]
endpoints:
- addresses: [%[4]q]
  zone: zone-b
  conditions: {ready: true}
  targetRef: {kind: Pod, namespace: shop, name: backend-%[1]d}
`, i+1, versions[i], p, ip)
	}
	return b.String()
}

// clusterAConfig: the front Service and the routing: front → backend subset
// v2, whose endpoints all live in cluster B.
const clusterAConfig = `apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: front, namespace: shop}
spec:
  ports: [{name: grpc, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: backend, namespace: shop}
spec:
  host: backend.shop.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, namespace: shop}
spec:
  hosts: [front.shop.svc.cluster.local]
  http:
  - route:
    - destination: {host: backend.shop.svc.cluster.local, subset: v2, port: {number: 9080}}
`

type clusterDoc struct {
	Clusters []struct {
		ID      string            `json:"id"`
		State   string            `json:"state"`
		Kinds   map[string]string `json:"kinds"`
		Resyncs int               `json:"resyncs"`
	} `json:"clusters"`
	StatusWriter bool `json:"statusWriter"`
}

func (r *rosen) clusterState(t *testing.T, id string) (state string, resyncs int) {
	t.Helper()
	var doc clusterDoc
	r.getJSON(t, "/debug/clusters", &doc)
	for _, c := range doc.Clusters {
		if c.ID == id {
			return c.State, c.Resyncs
		}
	}
	t.Fatalf("cluster %s not in /debug/clusters", id)
	return "", 0
}

// hits makes n calls and counts answers by backend name (errors under "error").
func hits(t *testing.T, c *xdsClient, target string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		name, err := c.call(t, target)
		if err != nil {
			name = "error"
		}
		got[name]++
	}
	return got
}

func TestKubeMultiCluster(t *testing.T) {
	bin := kubeenv.Require(t)
	etcd := kubeenv.StartEtcd(t, bin)
	a := kubeenv.StartAPIServer(t, bin, etcd, "cluster-a")
	b := kubeenv.StartAPIServer(t, bin, etcd, "cluster-b")

	// Install: Istio's CRDs on the primary, manifests/ on both (RBAC, CRDs).
	applyIstioCRDs(t, a.Config())
	applyManifests(t, a.Config())
	applyManifests(t, b.Config())
	example, err := os.ReadFile(filepath.Join(repoRoot(), "manifests", "example", "mesh.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kubeenv.MustApply(t, a.Config(), string(example)) // the CRD schemas accept the documented example

	// The backends live on a test host of the test's own (a network
	// namespace): the API server refuses loopback endpoint addresses.
	host := kubeenv.NewTestHost(t)
	ip := host.IP
	var ports [3]int
	for i := range ports {
		ports[i] = startBackendOn(t, host, fmt.Sprintf("backend-%d", i+1)).port
	}
	kubeenv.MustApply(t, a.Config(), clusterAConfig)
	kubeenv.MustApply(t, b.Config(), clusterBWorkloads(ip, ports))

	// Rosen runs with the ServiceAccount's token from manifests/, not as admin.
	dir := t.TempDir()
	ka := a.WriteKubeconfig(t, dir, serviceAccountToken(t, a.Config()))
	kb := b.WriteKubeconfig(t, dir, serviceAccountToken(t, b.Config()))
	const grace = 4 * time.Second
	r := startRosenArgs(t, "--kubeconfig", ka, "--kubeconfig", kb, "--kube-grace", grace.String(),
		"--kube-probe", "250ms", "--kube-debounce", "50ms", "--kube-lease-namespace", "rosen-system", "--kube-identity", "it-0")

	t.Run("rbac allows exactly what rosen does", func(t *testing.T) {
		var doc clusterDoc
		eventually(t, 30*time.Second, func() error {
			r.getJSON(t, "/debug/clusters", &doc)
			for _, c := range doc.Clusters {
				for k, st := range c.Kinds {
					if st != "synced" {
						return fmt.Errorf("%s %s: %s", c.ID, k, st)
					}
				}
			}
			if !doc.StatusWriter {
				return errors.New("no status lease held")
			}
			return nil
		})
		sa := a.ConfigWithToken(serviceAccountToken(t, a.Config()))
		core, err := corev1client.NewForConfig(sa)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := core.Secrets("shop").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("rosen cannot list secrets: %v", err)
		}
		if _, err := core.ConfigMaps("shop").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("rosen may list configmaps (err %v); it reads none", err)
		}
		if err := core.Services("shop").Delete(ctx, "front", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("rosen may delete services (err %v)", err)
		}
		// Events: create and patch only (the broken VirtualService below shows create works).
		if _, err := core.Events("shop").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("rosen may list events (err %v); it only creates and patches them", err)
		}
		if err := core.Events("shop").Delete(ctx, "any", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("rosen may delete events (err %v)", err)
		}
	})

	t.Run("manifests/example is used as it is", func(t *testing.T) {
		var doc struct {
			LeftOut []struct {
				Source  struct{ Namespace, Name string } `json:"source"`
				Message string                           `json:"message"`
			} `json:"leftOut"`
		}
		eventually(t, 10*time.Second, func() error {
			var counts struct {
				Clusters []struct {
					Objects map[string]int `json:"objects"`
				} `json:"clusters"`
			}
			r.getJSON(t, "/debug/clusters", &counts)
			if got := counts.Clusters[0].Objects; got["RateLimitPolicy"] != 1 || got["VirtualService"] != 2 {
				return fmt.Errorf("cluster-a objects in the mesh: %v", got)
			}
			return nil
		})
		r.getJSON(t, "/debug/clusters", &doc)
		for _, e := range doc.LeftOut {
			t.Errorf("left out: %s/%s: %s", e.Source.Namespace, e.Source.Name, e.Message)
		}
	})

	client := newXDSClient(t, r, "kube-client")
	const target = "front.shop.svc.cluster.local:9080"
	t.Run("routes from cluster A reach pods of cluster B by their labels", func(t *testing.T) {
		eventually(t, 30*time.Second, func() error {
			got := hits(t, client, target, 12)
			if got["backend-1"] > 0 || got["error"] > 0 || got["backend-2"] == 0 || got["backend-3"] == 0 {
				return fmt.Errorf("answers %v, want backend-2 and backend-3 only (subset v2 by Pod labels)", got)
			}
			return nil
		})
	})

	t.Run("deleting an EndpointSlice in B moves traffic", func(t *testing.T) {
		disc, err := discoveryv1client.NewForConfig(b.Config())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := disc.EndpointSlices("shop").Delete(context.Background(), "backend-2", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, func() error {
			if got := hits(t, client, target, 6); got["backend-3"] != 6 {
				return fmt.Errorf("answers %v", got)
			}
			return nil
		})
		t.Logf("traffic moved %v after the EndpointSlice delete", time.Since(start).Round(time.Millisecond))
	})

	t.Run("an unreachable cluster keeps its endpoints for the grace period, then drops them", func(t *testing.T) {
		stopped := time.Now()
		b.Kill()
		eventually(t, 10*time.Second, func() error {
			if st, _ := r.clusterState(t, "cluster-b"); st != "Unreachable" && st != "Dropped" {
				return fmt.Errorf("cluster-b is %s", st)
			}
			return nil
		})
		if got := hits(t, client, target, 3); got["backend-3"] != 3 && time.Since(stopped) < grace {
			t.Errorf("within the grace period (%v since the crash) answers are %v", time.Since(stopped), got)
		}
		eventually(t, 30*time.Second, func() error {
			if st, _ := r.clusterState(t, "cluster-b"); st != "Dropped" {
				return fmt.Errorf("cluster-b is %s", st)
			}
			if got := hits(t, client, target, 2); got["error"] != 2 {
				return fmt.Errorf("answers after the grace period %v, want errors (no endpoints)", got)
			}
			return nil
		})
		if d := time.Since(stopped); d < grace {
			t.Errorf("endpoints dropped %v after the stop, before the %v grace period", d, grace)
		}
	})

	t.Run("a cluster that comes back resyncs without a restart", func(t *testing.T) {
		b.Start(t)
		eventually(t, 60*time.Second, func() error {
			st, resyncs := r.clusterState(t, "cluster-b")
			if st != "Synced" || resyncs != 1 {
				return fmt.Errorf("cluster-b is %s after %d resyncs", st, resyncs)
			}
			if got := hits(t, client, target, 4); got["backend-3"] != 4 {
				return fmt.Errorf("answers %v", got)
			}
			return nil
		})
	})

	t.Run("an object rosen cannot use gets a status and the rest keeps working", func(t *testing.T) {
		broken := `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: broken, namespace: shop}
spec:
  hosts: [broken.example.com]
  http:
  - route: [{destination: {host: nowhere.shop.svc.cluster.local}}]
`
		kubeenv.MustApply(t, a.Config(), broken)
		objs, err := kubeenv.Decode([]byte(broken))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() error {
			st := getStatus(t, a.Config(), objs[0])
			js, _ := json.Marshal(st)
			if !strings.Contains(string(js), `"status":"False"`) || !strings.Contains(string(js), "nowhere.shop.svc.cluster.local") ||
				!strings.Contains(string(js), "RS0001") {
				return fmt.Errorf("status %s", js)
			}
			return nil
		})
		// Also a Warning Event, written with the ServiceAccount's token (RBAC allows create on events).
		checkEvent(t, a.Config(), "shop", "VirtualService", "broken", "Warning", "Rejected", "spec.http[0].route[0].destination.host")
		if got := hits(t, client, target, 4); got["backend-3"] != 4 {
			t.Errorf("with a broken VirtualService beside it, answers are %v", got)
		}
		out, err := exec.Command(rosenBin, "status", "--http-addr", r.httpAddr).CombinedOutput()
		if err != nil {
			t.Fatalf("rosen status: %v\n%s", err, out)
		}
		for _, want := range []string{"cluster-a", "cluster-b", "Synced",
			"LEFT OUT kube://cluster-a: VirtualService shop/broken: spec.http[0].route[0].destination.host"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("rosen status lacks %q:\n%s", want, out)
			}
		}
		kubeenv.MustApply(t, a.Config(), strings.Replace(broken, "nowhere", "backend", 1))
		eventually(t, 30*time.Second, func() error {
			js, _ := json.Marshal(getStatus(t, a.Config(), objs[0]))
			if !strings.Contains(string(js), `"status":"True"`) {
				return fmt.Errorf("status after the fix %s", js)
			}
			return nil
		})
		checkEvent(t, a.Config(), "shop", "VirtualService", "broken", "Normal", "Accepted", "Rosen uses this object again")
	})

	t.Run("a rotated Secret reaches the gateway over SDS without a restart", func(t *testing.T) {
		cert1, key1 := selfSigned(t, "shop.example.com", 1)
		kubeenv.MustApply(t, a.Config(), `apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---
`+tlsSecret("istio-system", "shop-cert", cert1, key1)+`---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: shop-cert}
`)
		sds := openSDS(t, r, "shop-cert")
		for got := sds.next(t); string(got) != string(cert1); got = sds.next(t) {
			t.Logf("waiting for the first certificate")
		}
		cert2, key2 := selfSigned(t, "shop.example.com", 2)
		kubeenv.MustApply(t, a.Config(), tlsSecret("istio-system", "shop-cert", cert2, key2))
		for got := sds.next(t); string(got) != string(cert2); got = sds.next(t) {
			if string(got) != string(cert1) {
				t.Fatalf("unexpected certificate %q", got)
			}
		}
	})
}

// TestServeRejectsBadKubeconfig: a kubeconfig that is missing, is not a
// kubeconfig, or names a cluster twice stops `rosen serve` at once with a
// message naming the problem (no API server needed).
func TestServeRejectsBadKubeconfig(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.yaml")
	writeFile(t, garbage, "clusters: [[[")
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, `apiVersion: v1
kind: Config
clusters: [{name: east, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: east, user: u}}]
current-context: c
`)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--kubeconfig", filepath.Join(dir, "missing.yaml")}, "kube: bad kubeconfig"},
		{[]string{"--kubeconfig", garbage}, "kube: bad kubeconfig"},
		{[]string{"--kubeconfig", good, "--kubeconfig", good}, `kube: duplicate cluster id "east"`},
		{[]string{"--kubeconfig", good, "--kube-config-from", "some"}, "kube: unknown config mode"},
		{[]string{"--kubeconfig", good, "--kube-discovery-selector", "a in (("}, "--kube-discovery-selector"},
	}
	for _, c := range cases {
		args := append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data", t.TempDir()}, c.args...)
		out, err := exec.Command(rosenBin, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("rosen %v: err %v, output lacks %q:\n%s", c.args, err, c.want, out)
		}
	}
}
