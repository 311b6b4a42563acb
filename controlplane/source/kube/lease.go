package kube

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
)

// lease holds a coordination.k8s.io Lease so that exactly one replica does
// the work that must run once (writing status). It is a small
// implementation of client-go's leader election (whose package pulls in
// every typed client): acquire when the Lease is free or expired, renew
// every period, give up when renewing fails for a whole lease duration.
type lease struct {
	client    coordinationclient.LeaseInterface
	name      string
	identity  string
	duration  time.Duration
	log       *zap.Logger
	held      atomic.Bool
	lastRenew time.Time
}

func newLease(rc *rest.Config, namespace, name, identity string, duration time.Duration, log *zap.Logger) (*lease, error) {
	c, err := coordinationclient.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("lease client: %w", err)
	}
	return &lease{client: c.Leases(namespace), name: name, identity: identity, duration: duration, log: log}, nil
}

// Held reports whether this replica holds the Lease now.
func (l *lease) Held() bool { return l.held.Load() }

// run tries to acquire and renew until ctx ends, then releases the Lease.
func (l *lease) run(ctx context.Context, onChange func(held bool)) {
	t := time.NewTicker(l.duration / 3)
	defer t.Stop()
	for {
		ok, err := l.tryAcquireOrRenew(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			l.log.Debug("lease", zap.Error(err))
			if l.held.Load() && time.Since(l.lastRenew) > l.duration {
				ok = false
			} else {
				ok = l.held.Load()
			}
		case ok:
			l.lastRenew = time.Now()
		}
		if ok != l.held.Load() {
			l.held.Store(ok)
			l.log.Info("status lease", zap.Bool("held", ok), zap.String("identity", l.identity))
			onChange(ok)
		}
		select {
		case <-ctx.Done():
			l.release()
			return
		case <-t.C:
		}
	}
}

func (l *lease) tryAcquireOrRenew(ctx context.Context) (bool, error) {
	now := metav1.NewMicroTime(time.Now())
	secs := int32(l.duration / time.Second)
	cur, err := l.client.Get(ctx, l.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = l.client.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: l.name},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity: &l.identity, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now,
			},
		}, metav1.CreateOptions{})
		return err == nil, err
	}
	if err != nil {
		return false, err
	}
	holder := ""
	if cur.Spec.HolderIdentity != nil {
		holder = *cur.Spec.HolderIdentity
	}
	if holder != l.identity && holder != "" && !expired(cur) {
		return false, nil
	}
	if holder != l.identity {
		cur.Spec.AcquireTime = &now
		trans := int32(0)
		if cur.Spec.LeaseTransitions != nil {
			trans = *cur.Spec.LeaseTransitions
		}
		trans++
		cur.Spec.LeaseTransitions = &trans
	}
	cur.Spec.HolderIdentity, cur.Spec.RenewTime, cur.Spec.LeaseDurationSeconds = &l.identity, &now, &secs
	_, err = l.client.Update(ctx, cur, metav1.UpdateOptions{}) // optimistic: a conflict means someone else won
	return err == nil, err
}

func expired(l *coordinationv1.Lease) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return true
	}
	return time.Since(l.Spec.RenewTime.Time) > time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second
}

// release clears the holder so another replica takes over at once.
func (l *lease) release() {
	if !l.held.Load() {
		return
	}
	l.held.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cur, err := l.client.Get(ctx, l.name, metav1.GetOptions{})
	if err != nil || cur.Spec.HolderIdentity == nil || *cur.Spec.HolderIdentity != l.identity {
		return
	}
	empty := ""
	cur.Spec.HolderIdentity = &empty
	_, _ = l.client.Update(ctx, cur, metav1.UpdateOptions{})
}
