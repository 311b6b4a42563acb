package istio

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/rosenmesh/rosen/controlplane/config"
)

// LabelCluster names the Kubernetes cluster an object (and so its endpoints)
// comes from, as Istio's topology.istio.io/cluster. The Kubernetes source sets
// it on every object it reads; in a file it may be written by hand.
const LabelCluster = "topology.istio.io/cluster"

// podKey identifies a Pod as an EndpointSlice's targetRef does, within its cluster.
type podKey struct{ cluster, namespace, name string }

// addPod indexes a Pod by its own metadata (the config object's name may
// carry a cluster suffix to keep names unique across clusters).
func (b *builder) addPod(o *config.Object, p *corev1.Pod) {
	if b.pods == nil {
		b.pods = map[podKey]*corev1.Pod{}
	}
	name, ns := p.Name, p.Namespace
	if name == "" {
		name = o.Name
	}
	if ns == "" {
		ns = o.Namespace
	}
	b.pods[podKey{o.Labels[LabelCluster], ns, name}] = p
}

// endpointLabels are the labels of one EndpointSlice endpoint: its Pod's
// labels when the Pod is known (the Kubernetes source), else the slice's own
// labels (the file convention, see doc.go). Either way the cluster label is
// kept, so a DestinationRule subset may select by cluster, as in Istio.
func (b *builder) endpointLabels(o *config.Object, ep discoveryv1.Endpoint, sliceLabels map[string]string) map[string]string {
	cluster := o.Labels[LabelCluster]
	ref := ep.TargetRef
	if ref == nil || ref.Kind != "Pod" || b.pods == nil {
		return copyLabels(sliceLabels)
	}
	ns := ref.Namespace
	if ns == "" {
		ns = o.Namespace
	}
	pod, ok := b.pods[podKey{cluster, ns, ref.Name}]
	if !ok {
		return copyLabels(sliceLabels)
	}
	out := make(map[string]string, len(pod.Labels)+1)
	for k, v := range pod.Labels {
		out[k] = v
	}
	if cluster != "" {
		out[LabelCluster] = cluster
	}
	return out
}

// endpointHealth maps EndpointSlice conditions to (healthy, draining):
// ready (or unknown) is healthy; not ready but still serving while
// terminating is draining; anything else is unhealthy.
func endpointHealth(c discoveryv1.EndpointConditions) (healthy, draining bool) {
	if c.Ready == nil || *c.Ready {
		return true, false
	}
	serving := c.Serving != nil && *c.Serving
	terminating := c.Terminating != nil && *c.Terminating
	return false, serving && terminating
}
