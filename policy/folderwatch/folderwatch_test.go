package folderwatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestPollReportsUnreadableOnce: failed is called once when the folder goes
// away (not on every poll), with nil when it is back, and changed is then
// called even though the files are the same as before.
func TestPollReportsUnreadableOnce(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var failures []error
	changes := 0
	snapshot := func() ([]error, int) {
		mu.Lock()
		defer mu.Unlock()
		return append([]error(nil), failures...), changes
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Poll(ctx, dir, 5*time.Millisecond,
			func() { mu.Lock(); changes++; mu.Unlock() },
			func(err error) { mu.Lock(); failures = append(failures, err); mu.Unlock() })
		close(done)
	}()
	time.Sleep(20 * time.Millisecond)
	if err := os.Rename(dir, dir+".gone"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if f, c := snapshot(); len(f) != 1 || f[0] == nil || !errors.Is(f[0], os.ErrNotExist) || c != 0 {
		t.Fatalf("while gone: failures %v, changes %d; want one not-exist failure", f, c)
	}
	if err := os.Rename(dir+".gone", dir); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, c := snapshot()
		if len(f) == 2 && c == 1 {
			if f[1] != nil {
				t.Fatalf("recovery reported as %v", f[1])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after recovery: failures %v, changes %d", f, c)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestLastRejection(t *testing.T) {
	var l LastRejection
	if l.Get() != nil {
		t.Fatal("zero value holds a rejection")
	}
	l.Set("/p", errors.New("p.rego:3: bad"), "abc")
	r := l.Get()
	if r == nil || r.Path != "/p" || r.Error != "p.rego:3: bad" || r.InForce != "abc" || r.Time.IsZero() {
		t.Fatalf("%+v", r)
	}
	r.Error = "changed"
	if l.Get().Error != "p.rego:3: bad" {
		t.Fatal("Get returned the held value, not a copy")
	}
	l.Clear()
	if l.Get() != nil {
		t.Fatal("not cleared")
	}
}
