package authz

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rosenmesh/rosen/internal/testenv"
)

// TestRejectionShowsAndClears: an edit that does not compile is kept as the
// current rejection (file:line, when, the version still in force) until a
// good edit clears it.
func TestRejectionShowsAndClears(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "authz.rego", header+"default allow := true\n")
	s := newTestServer(t, dir, Options{})
	if r := s.Rejection(); r != nil {
		t.Fatalf("rejection after a good load: %+v", r)
	}
	v1 := s.Policy().Version

	before := time.Now()
	writePolicy(t, dir, "authz.rego", header+"default allow := true\nx := \"open\n")
	if err := s.Reload(context.Background(), dir, ""); err == nil {
		t.Fatal("a non-terminated string loaded")
	}
	r := s.Rejection()
	if r == nil || r.Path != dir || !strings.Contains(r.Error, "authz.rego:6") || r.InForce != v1 || r.Time.Before(before.Add(-time.Second)) {
		t.Fatalf("rejection %+v, want authz.rego:6 with %s in force", r, v1)
	}

	writePolicy(t, dir, "authz.rego", header+"default allow := false\n")
	if err := s.Reload(context.Background(), dir, ""); err != nil {
		t.Fatal(err)
	}
	if r := s.Rejection(); r != nil {
		t.Fatalf("rejection not cleared by a good edit: %+v", r)
	}
}

// TestWatchUnreadableFolderLogsOnce: a folder that disappears while served
// keeps the policy in force, is logged once (not on every poll) and shown
// as the rejection; when it is back, it is reloaded and the rejection clears.
func TestWatchUnreadableFolderLogsOnce(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "policy")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writePolicy(t, dir, "p.rego", header+"default allow := true\n")
	core, logs := observer.New(zap.InfoLevel)
	s := newTestServer(t, dir, Options{Log: zap.New(core)})
	v1 := s.Policy().Version
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { _ = s.Watch(ctx, dir, "", 5*time.Millisecond); close(done) }()
	time.Sleep(20 * time.Millisecond)

	moved := filepath.Join(root, "moved")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the rejection", 5*time.Second, func() bool { return s.Rejection() != nil })
	time.Sleep(100 * time.Millisecond) // some 20 polls of a missing folder
	if n := logs.FilterMessageSnippet("unreadable").Len(); n != 1 {
		t.Fatalf("%d 'unreadable' log lines for one disappearance, want 1", n)
	}
	if r := s.Rejection(); !strings.Contains(r.Error, "unreadable") || r.InForce != v1 || s.Policy().Version != v1 {
		t.Fatalf("rejection %+v; in force %s, want %s", r, s.Policy().Version, v1)
	}

	// Back, with the same files and times: reloaded anyway, and cleared.
	if err := os.Rename(moved, dir); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the rejection to clear", 5*time.Second, func() bool { return s.Rejection() == nil })
	if logs.FilterMessageSnippet("readable again").Len() != 1 {
		t.Fatalf("recovery not logged once: %v", logs.All())
	}
	cancel()
	<-done
}
