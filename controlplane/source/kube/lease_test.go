package kube

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/rosenmesh/rosen/integration/kubeenv"
)

// TestLeaseOneHolderAtATime: two replicas compete for the status Lease on
// a real API server; exactly one holds it, and when it stops the other takes over.
func TestLeaseOneHolderAtATime(t *testing.T) {
	bin := kubeenv.Require(t)
	api := kubeenv.StartAPIServer(t, bin, kubeenv.StartEtcd(t, bin), "lease")
	kubeenv.MustApply(t, api.Config(), "apiVersion: v1\nkind: Namespace\nmetadata: {name: rosen-system}\n")
	const d = 3 * time.Second
	var leases [2]*lease
	var cancels [2]context.CancelFunc
	var stopped [2]chan struct{}
	for i := range leases {
		l, err := newLease(api.Config(), "rosen-system", "rosen-status", fmt.Sprintf("replica-%d", i), d, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		leases[i], cancels[i], stopped[i] = l, cancel, make(chan struct{})
		go func() { defer close(stopped[i]); l.run(ctx, func(bool) {}) }()
	}
	defer func() {
		for i := range cancels {
			cancels[i]()
			<-stopped[i]
		}
	}()
	holder := -1
	waitFor(t, func() error {
		a, b := leases[0].Held(), leases[1].Held()
		if a == b {
			return fmt.Errorf("held: %v %v", a, b)
		}
		holder = map[bool]int{true: 0, false: 1}[a]
		return nil
	})
	// Both keep renewing and retrying for a while: still one holder.
	time.Sleep(d)
	if leases[0].Held() == leases[1].Held() {
		t.Fatalf("held: %v %v", leases[0].Held(), leases[1].Held())
	}
	cancels[holder]()
	<-stopped[holder]
	other := 1 - holder
	waitFor(t, func() error {
		if !leases[other].Held() {
			return fmt.Errorf("replica-%d has not taken over", other)
		}
		return nil
	})
}
