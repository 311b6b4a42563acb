package istio

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rosenmesh/rosen/controlplane/config"
)

// kubeSet builds what the Kubernetes source produces for one service in two
// clusters: slices and Pods carry the cluster label, Pods carry the labels
// that subsets select.
func kubeSet(t *testing.T) *config.Set {
	t.Helper()
	ptr := func(b bool) *bool { return &b }
	port, name := int32(9080), "http"
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9080}}}}
	slice := func(cluster, addr, pod string) *config.Object {
		return &config.Object{
			Kind: config.KindEndpointSlice, Namespace: "default", Name: "reviews-x@" + cluster, File: "kube:" + cluster,
			Labels: map[string]string{discoveryv1.LabelServiceName: "reviews", LabelCluster: cluster, "slice-label": "x"},
			Spec: &discoveryv1.EndpointSlice{
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
				Endpoints: []discoveryv1.Endpoint{{
					Addresses:  []string{addr},
					Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
					TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: pod},
				}},
			},
		}
	}
	pod := func(cluster, name, version string) *config.Object {
		return &config.Object{
			Kind: "Pod", Namespace: "default", Name: name + "@" + cluster, File: "kube:" + cluster,
			Labels: map[string]string{LabelCluster: cluster},
			Spec: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: "default", Labels: map[string]string{"app": "reviews", "version": version},
			}},
		}
	}
	objs := []*config.Object{
		{Kind: config.KindService, Namespace: "default", Name: "reviews", File: "kube:a", Spec: svc},
		slice("a", "10.0.0.1", "reviews-1"),
		slice("b", "10.0.0.2", "reviews-1"), // same pod name in another cluster
		pod("a", "reviews-1", "v1"),
		pod("b", "reviews-1", "v2"),
	}
	set, errs := config.NewSet(objs)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return set
}

func TestPodLabelsAndClusterIDs(t *testing.T) {
	m, err := Build(kubeSet(t))
	if err != nil {
		t.Fatal(err)
	}
	s := m.Services[0]
	if len(s.Endpoints) != 2 {
		t.Fatalf("endpoints: %+v", s.Endpoints)
	}
	want := map[string][2]string{"10.0.0.1": {"a", "v1"}, "10.0.0.2": {"b", "v2"}}
	for _, ep := range s.Endpoints {
		w := want[ep.Address]
		if ep.ClusterID != w[0] || ep.Labels["version"] != w[1] || ep.Labels[LabelCluster] != w[0] {
			t.Errorf("%s: cluster %q labels %v, want cluster %s version %s", ep.Address, ep.ClusterID, ep.Labels, w[0], w[1])
		}
		if _, ok := ep.Labels["slice-label"]; ok {
			t.Errorf("%s: slice labels leaked although the Pod is known: %v", ep.Address, ep.Labels)
		}
	}
}

func TestEndpointHealth(t *testing.T) {
	ptr := func(b bool) *bool { return &b }
	cases := []struct {
		c                 discoveryv1.EndpointConditions
		healthy, draining bool
	}{
		{discoveryv1.EndpointConditions{}, true, false},
		{discoveryv1.EndpointConditions{Ready: ptr(true)}, true, false},
		{discoveryv1.EndpointConditions{Ready: ptr(false)}, false, false},
		{discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(true), Terminating: ptr(true)}, false, true},
		{discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(false), Terminating: ptr(true)}, false, false},
		{discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(true)}, false, false},
	}
	for i, c := range cases {
		h, d := endpointHealth(c.c)
		if h != c.healthy || d != c.draining {
			t.Errorf("case %d: got healthy=%v draining=%v, want %v %v", i, h, d, c.healthy, c.draining)
		}
	}
}
