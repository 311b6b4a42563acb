package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
		if !held {
			w.mu.Lock()
			w.written = map[objRef]string{} // the next holder starts over
			w.mu.Unlock()
		}
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

// statusBody is an IstioStatus: a Reconciled condition and, when rejected,
// one validation message.
func statusBody(msg string, now time.Time) map[string]any {
	cond := map[string]any{
		"type": ConditionReconciled, "status": "True", "reason": "Accepted",
		"message": "used by Rosen", "lastTransitionTime": now.UTC().Format(time.RFC3339),
	}
	var vms any // null clears the list
	if msg != "" {
		cond["status"], cond["reason"], cond["message"] = "False", "Rejected", fmt.Sprintf("Rosen left this object out of the mesh: %s", msg)
		vms = []map[string]any{{"type": map[string]string{"code": RejectedCode, "name": RejectedName}, "level": "ERROR"}}
	}
	return map[string]any{"conditions": []any{cond}, "validationMessages": vms}
}
