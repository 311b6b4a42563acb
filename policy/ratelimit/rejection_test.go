package ratelimit

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

const goodLimits = "domain: shop\ndescriptors:\n  - key: remote_address\n    rate_limit:\n      unit: minute\n      requests_per_unit: 3\n"

func writeLimits(t *testing.T, path, src string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRejectionShowsAndClears: a bad edit is kept as the current rejection
// (file and line, when, the version still in force) until a good edit
// clears it.
func TestRejectionShowsAndClears(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "limits.yaml")
	writeLimits(t, file, goodLimits)
	s := New(Options{})
	if err := s.Reload(dir); err != nil {
		t.Fatal(err)
	}
	v1 := s.Config().Version
	if v1 == "" || s.Rejection() != nil {
		t.Fatalf("version %q, rejection %+v after a good load", v1, s.Rejection())
	}

	writeLimits(t, file, strings.Replace(goodLimits, "unit: minute", "unit: fortnight", 1))
	if err := s.Reload(dir); err == nil {
		t.Fatal("an unknown unit loaded")
	}
	r := s.Rejection()
	if r == nil || r.Path != dir || !strings.Contains(r.Error, "limits.yaml") || !strings.Contains(r.Error, "fortnight") || r.InForce != v1 || r.Time.IsZero() {
		t.Fatalf("rejection %+v, want limits.yaml's unit with %s in force", r, v1)
	}
	if s.Config().Version != v1 {
		t.Fatal("the configuration in force changed")
	}

	writeLimits(t, file, strings.Replace(goodLimits, "3", "5", 1))
	if err := s.Reload(dir); err != nil {
		t.Fatal(err)
	}
	if r := s.Rejection(); r != nil || s.Config().Version == v1 {
		t.Fatalf("after a good edit: rejection %+v, version %s (was %s)", r, s.Config().Version, v1)
	}
}

// TestWatchUnreadableLogsOnce: a config file that disappears while served is
// logged once, not on every poll, and shown as the rejection until it is
// back.
func TestWatchUnreadableLogsOnce(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "limits.yaml")
	writeLimits(t, file, goodLimits)
	core, logs := observer.New(zap.InfoLevel)
	s := New(Options{Log: zap.New(core)})
	if err := s.Reload(file); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { s.Watch(ctx, file, 5*time.Millisecond); close(done) }()
	time.Sleep(20 * time.Millisecond)
	if err := os.Rename(file, file+".bak"); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the rejection", 5*time.Second, func() bool { return s.Rejection() != nil })
	time.Sleep(100 * time.Millisecond)
	if n := logs.FilterMessageSnippet("unreadable").Len(); n != 1 {
		t.Fatalf("%d 'unreadable' log lines, want 1", n)
	}
	if err := os.Rename(file+".bak", file); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the rejection to clear", 5*time.Second, func() bool { return s.Rejection() == nil })
	cancel()
	<-done
}
