package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/rosenmesh/rosen/integration/kubeenv"
)

// applyRosenCRDs installs manifests/crds/ and waits until their kinds are served.
func applyRosenCRDs(t *testing.T, cfg *rest.Config) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "..", "manifests", "crds", "*.yaml"))
	if err != nil || len(paths) < 3 {
		t.Fatalf("manifests/crds: %v %v", paths, err)
	}
	var docs []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	kubeenv.MustApply(t, cfg, strings.Join(docs, "\n---\n"))
	dyn := dynamic.NewForConfigOrDie(cfg)
	waitFor(t, func() error {
		for _, r := range []string{"cqrsrules", "tccpolicies", "ratelimitpolicies"} {
			if _, err := dyn.Resource(schema.GroupVersionResource{Group: "rosen.dev", Version: "v1alpha1", Resource: r}).List(context.Background(), metav1.ListOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
}

func cqrsRule(name, table string) string {
	return fmt.Sprintf(`apiVersion: rosen.dev/v1alpha1
kind: CQRSRule
metadata: {name: %s, namespace: test}
spec:
  event: orderCreated
  table: %s
  database: db
  mapping: [{source: id, target: id, primary: true}]
`, name, table)
}

// recorder is a ModuleHandler that keeps what it was handed and refuses
// every object whose spec.table is "refuse_me".
type recorder struct {
	mu    sync.Mutex
	calls [][]ModuleObject
}

func (r *recorder) handle(objs []ModuleObject) []Refusal {
	r.mu.Lock()
	r.calls = append(r.calls, objs)
	r.mu.Unlock()
	var out []Refusal
	for i, o := range objs {
		var spec struct{ Table string }
		_ = json.Unmarshal(o.Spec, &spec)
		if spec.Table == "refuse_me" {
			out = append(out, Refusal{Index: i, Field: "spec.table", Message: `table "refuse_me" is refused by the test`})
		}
	}
	return out
}

func (r *recorder) last() (names string, calls int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return "", 0
	}
	var ns []string
	for _, o := range r.calls[len(r.calls)-1] {
		ns = append(ns, o.Cluster+":"+o.Namespace+"/"+o.Name)
	}
	return strings.Join(ns, ","), len(r.calls)
}

// TestModuleKindsReachTheirModuleAndRefusalsGetStatusAndEvents: CQRSRules
// and TCCPolicies in a real API server reach the module that registered
// for them, again only when they change; an object the module refuses is
// listed by Rejected with its field, gets Reconciled=False naming the field
// and one Warning Event (not one per status sync); once fixed it gets
// Reconciled=True and a Normal Event.
func TestModuleKindsReachTheirModuleAndRefusalsGetStatusAndEvents(t *testing.T) {
	bin := kubeenv.Require(t)
	etcd := kubeenv.StartEtcd(t, bin)
	api := kubeenv.StartAPIServer(t, bin, etcd, "mods")
	cfg := api.Config()
	cfg.QPS, cfg.Burst = 200, 400
	applyRosenCRDs(t, cfg)
	kubeenv.MustApply(t, cfg, "apiVersion: v1\nkind: Namespace\nmetadata: {name: test}\n---\n"+cqrsRule("orders", "orders")+"---\n"+cqrsRule("broken", "refuse_me"))

	src, err := New(Options{Clusters: []ClusterConfig{{ID: "mods", REST: cfg}}, Probe: 200 * time.Millisecond, Debounce: 20 * time.Millisecond, Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var cqrs, tcc recorder
	if err := src.HandleModuleKind(KindCQRSRule, cqrs.handle); err != nil {
		t.Fatal(err)
	}
	if err := src.HandleModuleKind(KindTCCPolicy, tcc.handle); err != nil {
		t.Fatal(err)
	}
	if err := src.HandleModuleKind("VirtualService", cqrs.handle); err == nil {
		t.Fatal("a mesh kind was accepted as a module kind")
	}
	w, err := src.NewStatusWriter("test", "rosen-status", "test-0", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	runWriter := func(w *StatusWriter) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = w.Run(ctx); close(done) }()
		var once sync.Once
		stop = func() { once.Do(func() { cancel(); <-done }) }
		t.Cleanup(stop)
		return stop
	}
	stopFirst := runWriter(w)
	runSource(t, src)

	waitFor(t, func() error {
		if got, _ := cqrs.last(); got != "mods:test/broken,mods:test/orders" {
			return fmt.Errorf("cqrs handler got %q", got)
		}
		if _, n := tcc.last(); n != 1 {
			return fmt.Errorf("tcc handler called %d times, want once (with no objects)", n)
		}
		return nil
	})
	rej := src.Rejected()
	if len(rej) != 1 || rej[0].Error() != `kube://mods: CQRSRule test/broken: spec.table: table "refuse_me" is refused by the test` {
		t.Fatalf("rejected %v", rej)
	}

	dyn := dynamic.NewForConfigOrDie(cfg)
	rules := dyn.Resource(schema.GroupVersionResource{Group: "rosen.dev", Version: "v1alpha1", Resource: "cqrsrules"}).Namespace("test")
	condition := func(name string) (string, string) {
		u, err := rules.Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == ConditionReconciled {
				return fmt.Sprint(m["status"]), fmt.Sprint(m["message"])
			}
		}
		return "", ""
	}
	waitFor(t, func() error {
		if st, msg := condition("broken"); st != "False" || !strings.Contains(msg, `spec.table: table "refuse_me" is refused by the test`) {
			return fmt.Errorf("broken: %s %q", st, msg)
		}
		return nil
	})
	if st, _ := condition("orders"); st != "" {
		t.Errorf("the accepted rule got a status %q (only left-out objects are marked)", st)
	}
	core := corev1client.NewForConfigOrDie(cfg)
	events := func(reason string, name ...string) []corev1.Event {
		list, err := core.Events("test").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		obj := "broken"
		if len(name) > 0 {
			obj = name[0]
		}
		var out []corev1.Event
		for _, e := range list.Items {
			if e.InvolvedObject.Kind == KindCQRSRule && e.InvolvedObject.Name == obj && e.Reason == reason {
				out = append(out, e)
			}
		}
		return out
	}
	waitFor(t, func() error {
		evs := events(EventRejected)
		if len(evs) != 1 || evs[0].Type != corev1.EventTypeWarning || !strings.Contains(evs[0].Message, "spec.table") ||
			evs[0].InvolvedObject.UID == "" || evs[0].InvolvedObject.APIVersion != "rosen.dev/v1alpha1" || evs[0].Source.Component != "rosen" {
			return fmt.Errorf("events %+v", evs)
		}
		return nil
	})

	// A status-only change (Rosen's own write) and periodic syncs neither
	// re-deliver the objects nor repeat the Event.
	_, calls := cqrs.last()
	time.Sleep(6 * time.Second) // past one periodic status sync (5 s)
	if _, n := cqrs.last(); n != calls {
		t.Errorf("handler called %d more times without a spec change", n-calls)
	}
	if evs := events(EventRejected); len(evs) != 1 || evs[0].Count > 1 {
		t.Errorf("the rejection was reported again: %+v", evs)
	}

	// Another refused object; then the status writer stops, and "broken"
	// is fixed while no replica holds the Lease.
	kubeenv.MustApply(t, cfg, cqrsRule("broken-2", "refuse_me"))
	waitFor(t, func() error {
		if st, _ := condition("broken-2"); st != "False" || len(events(EventRejected, "broken-2")) != 1 {
			return fmt.Errorf("broken-2: %q, %d events", st, len(events(EventRejected, "broken-2")))
		}
		return nil
	})
	stopFirst()
	kubeenv.MustApply(t, cfg, cqrsRule("broken", "fixed"))
	waitFor(t, func() error {
		for _, fe := range src.Rejected() {
			if fe.Source.Name == "broken" {
				return fmt.Errorf("still rejected: %v", fe)
			}
		}
		return nil
	})

	// The next Lease holder adopts the marks on the objects: it marks the
	// fixed object True with a Normal Event, and neither rewrites nor
	// re-announces the one still refused.
	w2, err := src.NewStatusWriter("test", "rosen-status", "test-1", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	runWriter(w2)
	waitFor(t, func() error {
		if st, _ := condition("broken"); st != "True" {
			return fmt.Errorf("broken after the fix: %q", st)
		}
		if evs := events(EventAccepted); len(evs) != 1 || evs[0].Type != corev1.EventTypeNormal {
			return fmt.Errorf("accepted events %+v", evs)
		}
		return nil
	})
	time.Sleep(6 * time.Second) // past a periodic sync of the new holder
	if evs := events(EventRejected, "broken-2"); len(evs) != 1 || evs[0].Count > 1 {
		t.Errorf("the new Lease holder announced broken-2's rejection again: %+v", evs)
	}
	if st, _ := condition("broken-2"); st != "False" {
		t.Errorf("broken-2: %q", st)
	}

	kubeenv.MustApply(t, cfg, `apiVersion: rosen.dev/v1alpha1
kind: TCCPolicy
metadata: {name: defaults, namespace: test}
spec: {defaultTimeout: 30s, retry: {limit: 3}}
`)
	waitFor(t, func() error {
		tcc.mu.Lock()
		defer tcc.mu.Unlock()
		last := tcc.calls[len(tcc.calls)-1]
		if len(last) != 1 || string(last[0].Spec) != `{"defaultTimeout":"30s","retry":{"limit":3}}` || last[0].Where() != "kube://mods: TCCPolicy test/defaults" {
			return fmt.Errorf("tcc handed %+v", last)
		}
		return nil
	})
}
