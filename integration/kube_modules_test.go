package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/rosenmesh/rosen/integration/kubeenv"
)

// TestKubeModuleKinds: Rosen's own CQRSRule and TCCPolicy kinds, installed
// from manifests/ on a real API server and read by `rosen serve` with the
// ServiceAccount token of manifests/ (not as admin), reach the CQRS engine
// and the TCC coordinator; objects they cannot use get Reconciled=False
// naming the field and a Warning Event, and the rest applies.
func TestKubeModuleKinds(t *testing.T) {
	bin := kubeenv.Require(t)
	etcd := kubeenv.StartEtcd(t, bin)
	api := kubeenv.StartAPIServer(t, bin, etcd, "cluster-m")
	admin := api.Config()
	applyManifests(t, admin)
	kubeenv.MustApply(t, admin, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")

	dir := t.TempDir()
	cqrsDir := filepath.Join(dir, "cqrs")
	if err := os.MkdirAll(cqrsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeJSONFile(t, filepath.Join(cqrsDir, "databases.json"), map[string]any{
		"databases": map[string]any{"views": map[string]any{"type": "sqlite", "dbName": filepath.Join(dir, "views.db")}}})
	kc := api.WriteKubeconfig(t, dir, serviceAccountToken(t, admin))
	r := startRosenArgs(t, "--kubeconfig", kc, "--kube-debounce", "50ms", "--kube-probe", "250ms",
		"--kube-lease-namespace", "rosen-system", "--kube-identity", "it-m", "--cqrs-dir", cqrsDir)

	t.Run("CQRSRules reach the engine, a bad one is told why", func(t *testing.T) {
		kubeenv.MustApply(t, admin, `apiVersion: rosen.dev/v1alpha1
kind: CQRSRule
metadata: {name: orders, namespace: shop}
spec:
  event: orderCreated
  table: orders
  database: views
  createTable: true
  filter: payload.total > 0
  mapping:
  - {source: id, target: id, primary: true, type: string}
  - {expr: "payload.total * 100", target: cents, type: bigint}
---
apiVersion: rosen.dev/v1alpha1
kind: CQRSRule
metadata: {name: lost, namespace: shop}
spec:
  event: orderLost
  table: lost
  database: nowhere
  mapping: [{source: id, target: id, primary: true}]
`)
		eventually(t, 30*time.Second, func() error {
			var st struct {
				Rules []struct {
					View, Event string
					Events      uint64
				}
			}
			if err := getJSONErr(r, "/api/cqrs/status", &st); err != nil {
				return err // 503 while the engine reopens with the new rules
			}
			if len(st.Rules) != 1 || st.Rules[0].View != "orders" || st.Rules[0].Event != "orderCreated" {
				return fmt.Errorf("cqrs rules %+v", st.Rules)
			}
			return nil
		})
		eventually(t, 30*time.Second, func() error {
			resp, err := http.Post("http://"+r.httpAddr+"/api/cqrs/events", "application/json",
				strings.NewReader(`{"id":"k8s-1","type":"orderCreated","key":"o1","payload":{"id":"o1","total":5}}`))
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				return fmt.Errorf("publish: %s %s", resp.Status, body)
			}
			return nil
		})
		eventually(t, 30*time.Second, func() error {
			var st struct{ Rules []struct{ Events uint64 } }
			if err := getJSONErr(r, "/api/cqrs/status", &st); err != nil {
				return err
			}
			if len(st.Rules) != 1 || st.Rules[0].Events != 1 {
				return fmt.Errorf("cqrs rules %+v", st.Rules)
			}
			return nil
		})
		checkRejected(t, admin, "cqrsrules", "lost", "CQRSRule", `spec.database: rules: unknown reference: database "nowhere" is not in the databases config`)
	})

	t.Run("a TCCPolicy sets the coordinator's defaults, bad ones are told why", func(t *testing.T) {
		beginTimeout := func() (time.Duration, int) {
			resp, err := http.Post("http://"+r.httpAddr+"/api/txn/transactions", "application/json", bytes.NewReader([]byte(`{}`)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var v struct {
				CreatedAt time.Time `json:"created_at"`
				Deadline  time.Time `json:"deadline"`
				Retry     struct{ Limit int }
			}
			if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusCreated {
				t.Fatalf("begin: %s %v", resp.Status, err)
			}
			return v.Deadline.Sub(v.CreatedAt).Round(time.Second), v.Retry.Limit
		}
		policy := func(name, timeout string) string {
			return fmt.Sprintf("apiVersion: rosen.dev/v1alpha1\nkind: TCCPolicy\nmetadata: {name: %s, namespace: rosen-system}\nspec: {defaultTimeout: %q, retry: {limit: 3}}\n", name, timeout)
		}
		if d, _ := beginTimeout(); d != 60*time.Second {
			t.Fatalf("default timeout before any TCCPolicy: %s", d)
		}
		kubeenv.MustApply(t, admin, policy("defaults", "7s"))
		eventually(t, 30*time.Second, func() error {
			if d, limit := beginTimeout(); d != 7*time.Second || limit != 3 {
				return fmt.Errorf("timeout %s, retry limit %d", d, limit)
			}
			return nil
		})
		kubeenv.MustApply(t, admin, policy("zz-second", "9s"))
		checkRejected(t, admin, "tccpolicies", "zz-second", "TCCPolicy", "metadata.name: only one TCCPolicy is used, the first by namespace/name: kube://cluster-m: TCCPolicy rosen-system/defaults")
		kubeenv.MustApply(t, admin, policy("defaults", "soon"))
		checkRejected(t, admin, "tccpolicies", "defaults", "TCCPolicy", `spec.defaultTimeout: "soon" is not a duration`)
		if d, _ := beginTimeout(); d != 7*time.Second {
			t.Errorf("a refused TCCPolicy changed the timeout to %s", d)
		}

		// manifests/example/modules/ as it is: its CQRSRule joins the engine, and
		// its TCCPolicy applies once it is the only one.
		ex, err := os.ReadFile(filepath.Join(repoRoot(), "manifests", "example", "modules", "modules.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		applier, err := kubeenv.NewApplier(admin)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"defaults", "zz-second"} {
			objs, _ := kubeenv.Decode([]byte(policy(name, "1s")))
			if err := applier.Delete(context.Background(), objs[0]); err != nil {
				t.Fatal(err)
			}
		}
		kubeenv.MustApply(t, admin, string(ex))
		eventually(t, 30*time.Second, func() error {
			if d, limit := beginTimeout(); d != 30*time.Second || limit != 8 {
				return fmt.Errorf("with the example's TCCPolicy: timeout %s, retry limit %d", d, limit)
			}
			var st struct{ Rules []struct{ View string } }
			if err := getJSONErr(r, "/api/cqrs/status", &st); err != nil {
				return err
			}
			if len(st.Rules) != 2 {
				return fmt.Errorf("cqrs rules %+v, want orders and the example's payments", st.Rules)
			}
			return nil
		})
	})
}

// checkRejected waits until the object carries Reconciled=False with want
// in its message and a Warning Event Rejected saying the same, written by
// Rosen with its ServiceAccount.
func checkRejected(t *testing.T, admin *rest.Config, resource, name, kind, want string) {
	t.Helper()
	obj, err := kubeenv.Decode([]byte(fmt.Sprintf("apiVersion: rosen.dev/v1alpha1\nkind: %s\nmetadata: {name: %s, namespace: %s}\n", kind, name, nsOf(resource))))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		js, _ := json.Marshal(getStatus(t, admin, obj[0]))
		if !strings.Contains(string(js), `"status":"False"`) || !strings.Contains(string(js), jsonText(want)) {
			return fmt.Errorf("%s %s status %s, want %q", kind, name, js, want)
		}
		return nil
	})
	checkEvent(t, admin, nsOf(resource), kind, name, "Warning", "Rejected", want)
}

// checkEvent waits for exactly one Event of Rosen's on the object with
// this type and reason whose message contains want (a repeat raises its
// count instead of adding an Event).
func checkEvent(t *testing.T, admin *rest.Config, ns, kind, name, typ, reason, want string) {
	t.Helper()
	core := corev1client.NewForConfigOrDie(admin)
	eventually(t, 30*time.Second, func() error {
		evs, err := core.Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		var got []string
		n := 0
		for _, e := range evs.Items {
			if e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name && e.Reason == reason && e.Type == typ && e.Source.Component == "rosen" {
				got = append(got, e.Message)
				if strings.Contains(e.Message, want) {
					n++
				}
			}
		}
		if n != 1 {
			return fmt.Errorf("%d %s events on %s %s saying %q, want 1; have %q", n, reason, kind, name, want, got)
		}
		return nil
	})
}

func nsOf(resource string) string {
	if resource == "tccpolicies" {
		return "rosen-system"
	}
	return "shop"
}

// jsonText is s as it appears inside a JSON string.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// getJSONErr is rosen.getJSON returning errors (for eventually).
func getJSONErr(r *rosen, path string, out any) error {
	resp, err := http.Get("http://" + r.httpAddr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", path, resp.Status, body)
	}
	return json.Unmarshal(body, out)
}
