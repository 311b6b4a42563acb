package coordinator_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
)

// TestSetSettingsChangesDefaultsOfNewTransactions: defaults changed at run
// time (a TCCPolicy) apply to transactions begun afterwards; bad settings
// are refused with the setting named and change nothing.
func TestSetSettingsChangesDefaultsOfNewTransactions(t *testing.T) {
	s, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "txn.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	c, _ := start(t, s, func(o *coordinator.Options) { o.DefaultTimeout = time.Minute; o.Retention = -1 })
	ctx := context.Background()
	before, err := c.Begin(ctx, coordinator.BeginRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if d := before.Deadline.Sub(before.CreatedAt); d < 59*time.Second || d > 61*time.Second {
		t.Fatalf("timeout before = %s", d)
	}

	bad := []struct {
		s    coordinator.Settings
		want string
	}{
		{coordinator.Settings{DefaultTimeout: time.Hour, MaxTimeout: time.Minute, DefaultPolicy: store.Policy{Initial: time.Second, Max: time.Second, Limit: 1}}, "defaultTimeout"},
		{coordinator.Settings{DefaultTimeout: time.Second, MaxTimeout: time.Minute, DefaultPolicy: store.Policy{Initial: time.Second, Max: time.Millisecond, Limit: 1}}, "retry"},
		{coordinator.Settings{DefaultTimeout: time.Second, MaxTimeout: time.Minute, DefaultPolicy: store.Policy{Initial: time.Second, Max: time.Second, Limit: 1}, WebhookURL: "ftp://x"}, "webhook"},
		{coordinator.Settings{DefaultTimeout: time.Second, DefaultPolicy: store.Policy{Initial: time.Second, Max: time.Second, Limit: 1}}, "maxTimeout"},
	}
	for _, b := range bad {
		err := c.SetSettings(b.s)
		var se *coordinator.SettingError
		if !errors.Is(err, coordinator.ErrBadInput) || !errors.As(err, &se) || se.Setting != b.want || !strings.HasPrefix(err.Error(), b.want+": ") {
			t.Errorf("SetSettings(%+v) = %v, want an error naming %s", b.s, err, b.want)
		}
	}
	if c.Settings().DefaultTimeout != time.Minute {
		t.Fatalf("refused settings changed the defaults: %+v", c.Settings())
	}

	want := coordinator.Settings{DefaultTimeout: 5 * time.Second, MaxTimeout: 10 * time.Second,
		DefaultPolicy: store.Policy{Initial: 20 * time.Millisecond, Max: time.Second, Limit: 3}}
	if err := c.SetSettings(want); err != nil {
		t.Fatal(err)
	}
	after, err := c.Begin(ctx, coordinator.BeginRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if d := after.Deadline.Sub(after.CreatedAt); d < 4*time.Second || d > 6*time.Second || after.Policy != want.DefaultPolicy {
		t.Fatalf("after: timeout %s policy %+v", d, after.Policy)
	}
	if _, err := c.Begin(ctx, coordinator.BeginRequest{Timeout: time.Minute}); !errors.Is(err, coordinator.ErrBadInput) {
		t.Fatalf("a timeout above the new maxTimeout: %v", err)
	}
	// Retention: the next purge uses the new value.
	if _, err := c.Abort(ctx, after.ID, "test", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	keep := c.Settings()
	keep.Retention = time.Hour
	if err := c.SetSettings(keep); err != nil {
		t.Fatal(err)
	}
	if n := c.Purge(ctx); n != 0 {
		t.Fatalf("purged %d with an hour's retention", n)
	}
	keep.Retention = time.Nanosecond
	if err := c.SetSettings(keep); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if n := c.Purge(ctx); n != 1 {
		t.Fatalf("purged %d with retention 1ns, want the aborted transaction", n)
	}
	if got, err := s.Get(ctx, before.ID); err != nil || got.Deadline.Sub(got.CreatedAt).Round(time.Second) != time.Minute {
		t.Fatalf("the earlier transaction changed: %v %v", got, err)
	}
}
