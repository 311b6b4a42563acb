package kube

import (
	"fmt"
	"testing"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/rosenmesh/rosen/controlplane/istio"
)

// benchCluster is a cluster whose stores hold n Services with two
// EndpointSlices each, without an API server (the informers never run).
func benchCluster(_ testing.TB, n int) *cluster {
	c := &cluster{ref: clusterRef{id: "bench"}, log: zap.NewNop(), synced: true, kindErr: map[string]error{}}
	ws := &watchSet{informers: map[string]cache.SharedIndexInformer{}}
	for _, k := range watchedKinds {
		if k.role == roleConfig || k.role == roleModule {
			continue
		}
		c.kinds = append(c.kinds, k)
		ws.informers[k.Kind] = cache.NewSharedIndexInformer(&cache.ListWatch{}, k.example, 0, cache.Indexers{})
	}
	port, pname, ready := int32(9080), "grpc", true
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		_ = ws.informers["Service"].GetStore().Add(&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "bench"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "grpc", Port: 9080}}},
		})
		for j, v := range []string{"v1", "v2"} {
			_ = ws.informers["EndpointSlice"].GetStore().Add(&discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{Name: name + "-" + v, Namespace: "bench", Labels: map[string]string{
					discoveryv1.LabelServiceName: name, "version": v,
				}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{{Name: &pname, Port: &port}},
				Endpoints: []discoveryv1.Endpoint{{
					Addresses:  []string{fmt.Sprintf("10.%d.%d.%d", j+1, i/250, 1+i%250)},
					Conditions: discoveryv1.EndpointConditions{Ready: &ready},
				}},
			})
		}
	}
	c.current = ws
	return c
}

// BenchmarkAssemble is the Kubernetes source's share of an endpoint change
// at 1,000 Services: read the stores, convert, merge into a set.
func BenchmarkAssemble(b *testing.B) {
	c := benchCluster(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		set, _ := merge([]snapshot{c.snapshot(nil)})
		if len(set.Objects) != 3000 {
			b.Fatal(len(set.Objects))
		}
	}
}

// BenchmarkAssembleAndBuild adds istio.Build, the model every change rebuilds.
func BenchmarkAssembleAndBuild(b *testing.B) {
	c := benchCluster(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		set, _ := merge([]snapshot{c.snapshot(nil)})
		if _, err := istio.Build(set); err != nil {
			b.Fatal(err)
		}
	}
}
