package kube

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/rosenmesh/rosen/controlplane/model"
)

// Validation message type of objects Rosen could not use, in Istio's
// analysis message shape (code, name, level).
const (
	RejectedCode = "RS0001"
	RejectedName = "RejectedByRosen"
	// ConditionReconciled is the condition Rosen sets: False with the
	// reason when the object is left out, True once it is used again.
	ConditionReconciled = "Reconciled"
)

// objRef names one object in one cluster.
type objRef struct{ cluster, kind, namespace, name string }

// StatusWriter writes back, onto the Istio and Rosen objects Rosen could
// not use, why (status.conditions and status.validationMessages, as istiod's
// analysis does), so `kubectl get virtualservice -o yaml` tells the operator.
// Only the replica holding the Lease writes.
type StatusWriter struct {
	src   *Source
	lease *lease
	log   *zap.Logger
	wake  chan struct{}

	mu      sync.Mutex
	built   []*model.FieldError // last report from the runner
	written map[objRef]string   // what this replica wrote (message, "" for accepted)
	adopt   bool                // the Lease was just acquired: read earlier holders' marks first
	events  *eventRecorders     // events.go
}

// NewStatusWriter uses a Lease named leaseName in namespace of the primary cluster.
func (s *Source) NewStatusWriter(namespace, leaseName, identity string, leaseDuration time.Duration) (*StatusWriter, error) {
	primary := s.opts.Clusters[0]
	l, err := newLease(primary.REST, namespace, leaseName, identity, leaseDuration, s.log.Named("lease"))
	if err != nil {
		return nil, err
	}
	w := &StatusWriter{src: s, lease: l, log: s.log.Named("status"), wake: make(chan struct{}, 1), written: map[objRef]string{},
		events: newEventRecorders(identity)}
	s.mu.Lock()
	s.statusPoke = w.poke
	s.mu.Unlock()
	return w, nil
}

// Report takes the runner's list of left-out objects (runner.Isolation.Report).
func (w *StatusWriter) Report(errs []*model.FieldError) {
	w.mu.Lock()
	w.built = errs
	w.mu.Unlock()
	w.poke()
}

// Leader reports whether this replica writes status now.
func (w *StatusWriter) Leader() bool { return w.lease.Held() }

func (w *StatusWriter) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run holds the Lease and writes status while it does, until ctx ends.
func (w *StatusWriter) Run(ctx context.Context) error {
	go w.lease.run(ctx, func(held bool) {
		w.mu.Lock()
		if held {
			w.adopt = true
		} else {
			w.written = map[objRef]string{} // the next holder reads the marks afresh
		}
		w.mu.Unlock()
		w.poke()
	})
	t := time.NewTicker(5 * time.Second) // also retries failed writes
	defer t.Stop()
	defer w.events.shutdown()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-t.C:
		}
		if w.lease.Held() {
			w.mu.Lock()
			adopt := w.adopt
			w.adopt = false
			w.mu.Unlock()
			if adopt {
				w.adoptMarks()
			}
			w.sync(ctx)
		}
	}
}

// desired maps every left-out object read from a cluster to its messages.
func (w *StatusWriter) desired() map[objRef]string {
	w.mu.Lock()
	errs := append(append([]*model.FieldError(nil), w.built...), w.src.Rejected()...)
	w.mu.Unlock()
	msgs := map[objRef][]string{}
	for _, fe := range errs {
		cluster, ok := strings.CutPrefix(fe.Source.File, SourcePrefix)
		if !ok || statusKind(fe.Source.Kind) == nil {
			continue
		}
		ref := objRef{cluster, fe.Source.Kind, fe.Source.Namespace, fe.Source.Name}
		m := fe.Message
		if fe.Field != "" {
			m = fe.Field + ": " + m
		}
		msgs[ref] = append(msgs[ref], m)
	}
	out := make(map[objRef]string, len(msgs))
	for ref, ms := range msgs {
		sort.Strings(ms)
		out[ref] = strings.Join(ms, "; ")
	}
	return out
}

// statusKind returns the config kind whose objects carry Rosen's status.
func statusKind(k string) *kind {
	for i := range watchedKinds {
		if watchedKinds[i].Kind == k && (watchedKinds[i].role == roleConfig || watchedKinds[i].role == roleModule) {
			return &watchedKinds[i]
		}
	}
	return nil
}

// sync writes what changed since the last write.
func (w *StatusWriter) sync(ctx context.Context) {
	want := w.desired()
	w.mu.Lock()
	written := make(map[objRef]string, len(w.written))
	for k, v := range w.written {
		written[k] = v
	}
	w.mu.Unlock()
	for ref, msg := range want {
		if prev, ok := written[ref]; ok && prev == msg {
			continue
		}
		w.write(ctx, ref, msg)
	}
	for ref, prev := range written {
		if _, still := want[ref]; !still && prev != "" {
			w.write(ctx, ref, "")
		}
	}
}

// write patches one object's status: rejected with msg, or accepted ("").
func (w *StatusWriter) write(ctx context.Context, ref objRef, msg string) {
	var c *cluster
	for _, cl := range w.src.list() {
		if cl.ref.id == ref.cluster {
			c = cl
		}
	}
	k := statusKind(ref.kind)
	if c == nil || k == nil {
		return
	}
	body, err := json.Marshal(map[string]any{"status": statusBody(msg, time.Now())})
	if err != nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	patched, err := c.cl.dynamic.Resource(k.GVR()).Namespace(ref.namespace).Patch(pctx, ref.name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: "rosen"}, "status")
	log := w.log.With(zap.String("cluster", ref.cluster), zap.String("kind", ref.kind), zap.String("object", ref.namespace+"/"+ref.name))
	if err != nil {
		log.Warn("cannot write status", zap.Error(err))
		if !unavailable(err) {
			return // retried on the next tick
		}
		// Forbidden, or gone: retrying cannot help until the object or the
		// role changes (which changes what is wanted), so it counts as written.
	} else {
		log.Info("status written", zap.Bool("accepted", msg == ""), zap.String("message", msg))
		w.events.record(c, k, patched, msg)
	}
	w.mu.Lock()
	w.written[ref] = msg
	w.mu.Unlock()
}

// rejectedPrefix starts the message of Rosen's Reconciled=False condition.
const rejectedPrefix = "Rosen left this object out of the mesh: "

// adoptMarks counts the marks already on the objects (written by an earlier
// Lease holder, or by this replica before a restart) as written by this
// one: an object still refused for the same reason is neither written nor
// told again (no second Event), and one fixed while no replica held the
// Lease is marked accepted.
func (w *StatusWriter) adoptMarks() {
	found := map[objRef]string{}
	for _, c := range w.src.list() {
		c.mu.Lock()
		ws := c.current
		c.mu.Unlock()
		if ws == nil {
			continue
		}
		for _, k := range c.kinds {
			inf := ws.informers[k.Kind]
			if inf == nil || statusKind(k.Kind) == nil {
				continue
			}
			for _, obj := range inf.GetStore().List() {
				m, ok := obj.(metav1.Object)
				if !ok {
					continue
				}
				if msg, ok := rosenMark(obj); ok {
					found[objRef{c.ref.id, k.Kind, m.GetNamespace(), m.GetName()}] = msg
				}
			}
		}
	}
	w.mu.Lock()
	for ref, msg := range found {
		if _, ok := w.written[ref]; !ok {
			w.written[ref] = msg
		}
	}
	w.mu.Unlock()
	w.log.Info("status marks of earlier writers adopted", zap.Int("objects", len(found)))
}

// rosenMark reads Rosen's Reconciled condition from an object's status:
// the rejection message, or "" when accepted; false when there is none.
func rosenMark(obj any) (string, bool) {
	var doc struct {
		Status struct {
			Conditions []struct {
				Type, Status, Reason, Message string
			} `json:"conditions"`
		} `json:"status"`
	}
	var js []byte
	var err error
	if u, ok := obj.(*unstructured.Unstructured); ok {
		js, err = json.Marshal(u.Object)
	} else {
		js, err = json.Marshal(obj) // Istio's types marshal their IstioStatus with protojson
	}
	if err != nil || json.Unmarshal(js, &doc) != nil {
		return "", false
	}
	for _, c := range doc.Status.Conditions {
		switch {
		case c.Type != ConditionReconciled:
		case c.Status == "True":
			return "", true
		case c.Status == "False" && c.Reason == "Rejected":
			return strings.TrimPrefix(c.Message, rejectedPrefix), true
		}
	}
	return "", false
}

// statusBody is an IstioStatus: a Reconciled condition and, when rejected,
// one validation message.
func statusBody(msg string, now time.Time) map[string]any {
	cond := map[string]any{
		"type": ConditionReconciled, "status": "True", "reason": "Accepted",
		"message": "used by Rosen", "lastTransitionTime": now.UTC().Format(time.RFC3339),
	}
	var vms any // null clears the list
	if msg != "" {
		cond["status"], cond["reason"], cond["message"] = "False", "Rejected", rejectedPrefix+msg
		vms = []map[string]any{{"type": map[string]string{"code": RejectedCode, "name": RejectedName}, "level": "ERROR"}}
	}
	return map[string]any{"conditions": []any{cond}, "validationMessages": vms}
}
