package kube

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/istio"
)

func TestMergeUnitesClusters(t *testing.T) {
	a, b := &clusterRef{id: "a"}, &clusterRef{id: "b"}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "default"}}
	slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "reviews-x", Namespace: "default"}}
	var snaps []snapshot
	for _, c := range []*clusterRef{a, b} {
		s1, _ := convertService(c, svc)
		s2, _ := convertSlice(c, slice)
		snaps = append(snaps, snapshot{objects: []*config.Object{s1, s2}})
	}
	set, rejected := merge(snaps)
	if len(rejected) > 0 {
		t.Fatal(rejected)
	}
	var got []string
	for _, o := range set.Objects {
		got = append(got, o.Kind+" "+o.Name+" "+o.Labels[istio.LabelCluster]+" "+o.File)
	}
	want := "EndpointSlice reviews-x@a a kube://a|EndpointSlice reviews-x@b b kube://b|Service reviews a kube://a"
	if strings.Join(got, "|") != want {
		t.Fatalf("set:\n%s\nwant:\n%s", strings.Join(got, "|"), want)
	}
	if !FromCluster(set.Objects[0]) || FromCluster(&config.Object{File: "x.yaml"}) {
		t.Error("FromCluster")
	}
}

func TestConvertRosenChecksLikeTheFileSource(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rosen.dev/v1alpha1", "kind": "RateLimitPolicy",
		"metadata": map[string]any{"name": "rl", "namespace": "shop", "uid": "x", "finalizers": []any{"f"}},
		"spec": map[string]any{
			"targetRef":   map[string]any{"kind": "VirtualService", "name": "front"},
			"domain":      "shop",
			"descriptors": []any{map[string]any{"entries": []any{map[string]any{"remoteAddress": map[string]any{}}}}},
		},
	}}
	o, err := convertRosen(&clusterRef{id: "a"}, u)
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "rl" || o.Namespace != "shop" || o.File != "kube://a" || o.Labels[istio.LabelCluster] != "a" {
		t.Fatalf("object %+v", o)
	}
	u.Object["spec"].(map[string]any)["domain"] = ""
	_, err = convertRosen(&clusterRef{id: "a"}, u)
	if err == nil || !strings.Contains(err.Error(), "kube://a: RateLimitPolicy shop/rl: spec.domain: required") {
		t.Fatalf("error %v", err)
	}
}

func TestTrimPodKeepsOnlyWhatEndpointsNeed(t *testing.T) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n", Labels: map[string]string{"version": "v2"}, Annotations: map[string]string{"big": "x"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}},
	}
	out, err := trimPod(p)
	if err != nil {
		t.Fatal(err)
	}
	tp := out.(*corev1.Pod)
	if tp.Labels["version"] != "v2" || tp.Name != "p" || len(tp.Spec.Containers) != 0 || len(tp.Annotations) != 0 {
		t.Fatalf("trimmed %+v", tp)
	}
}

func TestStatusBody(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rej := statusBody("spec.http[0]: unknown host", now)
	cond := rej["conditions"].([]any)[0].(map[string]any)
	if cond["status"] != "False" || cond["reason"] != "Rejected" || !strings.Contains(cond["message"].(string), "unknown host") {
		t.Fatalf("rejected %v", rej)
	}
	if rej["validationMessages"] == nil {
		t.Fatal("no validation message")
	}
	ok := statusBody("", now)
	if c := ok["conditions"].([]any)[0].(map[string]any); c["status"] != "True" || ok["validationMessages"] != nil {
		t.Fatalf("accepted %v", ok)
	}
}

func TestDiscoverySelectorAdmitsMatchingNamespaces(t *testing.T) {
	c := benchCluster(nil, 3)
	store := c.current.informers["Namespace"].GetStore()
	_ = store.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench", Labels: map[string]string{"mesh": "off"}}})
	sel, err := labels.Parse("mesh=on")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.snapshot(sel).objects; len(got) != 0 {
		t.Fatalf("namespace bench is not selected, yet %d objects came through", len(got))
	}
	_ = store.Update(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench", Labels: map[string]string{"mesh": "on"}}})
	if got := c.snapshot(sel).objects; len(got) != 9 {
		t.Fatalf("selected namespace: %d objects, want 3 Services and 6 EndpointSlices", len(got))
	}
	if got := c.snapshot(nil).objects; len(got) != 9 {
		t.Fatalf("no selector: %d objects", len(got))
	}
}
