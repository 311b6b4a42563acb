package kube

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// Event reasons Rosen uses on the objects it leaves out of the mesh (and
// takes back once they are fixed), beside their status conditions.
const (
	EventRejected = "Rejected"
	EventAccepted = "Accepted"
)

// maxEventMessage is the API server's limit on an Event's message.
const maxEventMessage = 1024

// eventRecorders emit core/v1 Events in the cluster of each object (one
// client-go broadcaster per cluster). The broadcaster's correlator
// deduplicates: the same event on the same object again raises its count
// (a PATCH) instead of creating another Event; RBAC grants exactly create
// and patch on events. Only the status writer records, and it writes only
// while it holds the Lease and only when an object's message changes.
type eventRecorders struct {
	identity string

	mu  sync.Mutex
	by  map[string]record.EventRecorder // by cluster id
	bcs []record.EventBroadcaster
}

func newEventRecorders(identity string) *eventRecorders {
	return &eventRecorders{identity: identity, by: map[string]record.EventRecorder{}}
}

func (e *eventRecorders) recorder(c *cluster) record.EventRecorder {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.by[c.ref.id]; ok {
		return r
	}
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&corev1client.EventSinkImpl{Interface: corev1client.New(c.cl.core).Events("")})
	// The scheme is unused: events name their object by an ObjectReference.
	r := b.NewRecorder(runtime.NewScheme(), corev1.EventSource{Component: "rosen", Host: e.identity})
	e.by[c.ref.id] = r
	e.bcs = append(e.bcs, b)
	return r
}

// record emits Rejected (Warning) with msg, or Accepted (Normal) when msg is
// empty, on obj (the object as the status patch returned it, for its UID).
func (e *eventRecorders) record(c *cluster, k *kind, obj *unstructured.Unstructured, msg string) {
	if obj == nil {
		return
	}
	ref := &corev1.ObjectReference{
		APIVersion: k.Group + "/" + k.Version, Kind: k.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName(),
		UID: obj.GetUID(), // no resource version: it changes with every status write, and the correlator must see a repeat as the same event
	}
	if msg == "" {
		e.recorder(c).Event(ref, corev1.EventTypeNormal, EventAccepted, "Rosen uses this object again")
		return
	}
	m := "Rosen left this object out of the mesh: " + msg
	if len(m) > maxEventMessage {
		m = m[:maxEventMessage-3] + "..."
	}
	e.recorder(c).Event(ref, corev1.EventTypeWarning, EventRejected, m)
}

// shutdown stops every broadcaster (after its queue is flushed).
func (e *eventRecorders) shutdown() {
	e.mu.Lock()
	bcs := e.bcs
	e.bcs, e.by = nil, map[string]record.EventRecorder{}
	e.mu.Unlock()
	for _, b := range bcs {
		b.Shutdown()
	}
}
