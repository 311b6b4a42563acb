package file

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosenmesh/rosen/controlplane/config"
)

type result struct {
	set *config.Set
	err error
	at  time.Time
}

func service(name string) string {
	return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + "}\nspec: {ports: [{port: 80}]}\n"
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start runs a source over dir and returns its results channel.
func start(t *testing.T, dir string, debounce time.Duration) <-chan result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan result, 100)
	done := make(chan error, 1)
	go func() {
		done <- New([]string{dir}, nil, debounce).Run(ctx, func(s *config.Set, err error) {
			ch <- result{s, err, time.Now()}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return ch
}

func next(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported")
	}
	return result{}
}

func names(s *config.Set) string {
	var n []string
	for _, o := range s.Objects {
		n = append(n, o.Name)
	}
	return strings.Join(n, ",")
}

// quiet asserts nothing more is reported for d.
func quiet(t *testing.T, ch <-chan result, d time.Duration) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("unexpected extra change: %v %v", r.set, r.err)
	case <-time.After(d):
	}
}

func TestInitialLoadAndEdit(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), service("a"))
	ch := start(t, dir, 100*time.Millisecond)
	if r := next(t, ch); r.err != nil || names(r.set) != "a" {
		t.Fatalf("initial = %v %v", r.set, r.err)
	}
	written := time.Now()
	write(t, filepath.Join(dir, "a.yaml"), service("a")+"---\n"+service("b"))
	r := next(t, ch)
	if r.err != nil || names(r.set) != "a,b" {
		t.Fatalf("after edit = %v %v", r.set, r.err)
	}
	if d := r.at.Sub(written); d < 100*time.Millisecond {
		t.Errorf("applied after %v, before the debounce", d)
	}
	quiet(t, ch, 300*time.Millisecond)
}

func TestBurstAppliesOnce(t *testing.T) {
	dir := t.TempDir()
	ch := start(t, dir, 150*time.Millisecond)
	next(t, ch)
	for i := 0; i < 10; i++ {
		write(t, filepath.Join(dir, "s.yaml"), service("s"+string(rune('a'+i))))
		time.Sleep(20 * time.Millisecond)
	}
	if r := next(t, ch); r.err != nil || names(r.set) != "sj" {
		t.Fatalf("after burst = %v %v", r.set, r.err)
	}
	quiet(t, ch, 400*time.Millisecond)
}

func TestMaxDelayUnderConstantWrites(t *testing.T) {
	dir := t.TempDir()
	ch := start(t, dir, 300*time.Millisecond)
	next(t, ch)
	begin := time.Now()
	stop := time.After(3 * time.Second)
	got := make(chan result, 1)
	go func() { got <- <-ch }()
	for i := 0; ; i++ {
		select {
		case <-stop:
			t.Fatal("constant writes never applied")
		case r := <-got:
			if d := r.at.Sub(begin); d > MaxDelay+500*time.Millisecond {
				t.Errorf("applied after %v, want about %v", d, MaxDelay)
			}
			return
		case <-time.After(100 * time.Millisecond):
			write(t, filepath.Join(dir, "s.yaml"), service("s"))
		}
	}
}

func TestBadFileReportsError(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), service("a"))
	ch := start(t, dir, 50*time.Millisecond)
	next(t, ch)
	write(t, filepath.Join(dir, "a.yaml"), "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {portz: []}\n")
	r := next(t, ch)
	if r.set != nil || r.err == nil || !strings.Contains(r.err.Error(), `unknown field "portz"`) {
		t.Fatalf("bad file = %v %v", r.set, r.err)
	}
}

func TestRenameReplaceAndNewFolder(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), service("a"))
	ch := start(t, dir, 50*time.Millisecond)
	next(t, ch)
	// An editor's atomic save: write a temp file, rename it over the original.
	tmp := filepath.Join(dir, ".a.yaml.swp")
	write(t, tmp, service("renamed"))
	if err := os.Rename(tmp, filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	if r := next(t, ch); r.err != nil || names(r.set) != "renamed" {
		t.Fatalf("after rename = %v %v", r.set, r.err)
	}
	// A folder created later is watched too.
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	for { // drain the reload the mkdir may cause
		select {
		case <-ch:
			continue
		default:
		}
		break
	}
	write(t, filepath.Join(sub, "b.yaml"), service("b"))
	if r := next(t, ch); r.err != nil || names(r.set) != "b,renamed" {
		t.Fatalf("after new folder = %v %v", r.set, r.err)
	}
}

// TestSpecialFilesAreRefusedNotRead: a named pipe dropped into the watched
// folder, or a symlink to a device, is reported as an error naming the file
// (as `rosen validate` does); it never blocks the reload loop (later edits
// still apply once it is gone) nor reads without bound.
func TestSpecialFilesAreRefusedNotRead(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), service("a"))
	ch := start(t, dir, 20*time.Millisecond)
	if r := next(t, ch); r.err != nil {
		t.Fatal(r.err)
	}

	fifo := filepath.Join(dir, "pipe.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	r := next(t, ch)
	if r.set != nil || r.err == nil || !strings.Contains(r.err.Error(), "pipe.yaml") || !strings.Contains(r.err.Error(), "not a regular file") {
		t.Fatalf("fifo: %v %v", r.set, r.err)
	}
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "b.yaml"), service("b"))
	for {
		r = next(t, ch)
		if r.err == nil && names(r.set) == "a,b" {
			break
		}
		if r.err != nil && strings.Contains(r.err.Error(), "pipe.yaml") {
			continue // the removal and the write may come as two reloads
		}
		t.Fatalf("after the fifo: %v %v", r.set, r.err)
	}

	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.yaml")); err != nil {
		t.Fatal(err)
	}
	r = next(t, ch)
	if r.set != nil || r.err == nil || !strings.Contains(r.err.Error(), "zero.yaml") {
		t.Fatalf("/dev/zero: %v %v", r.set, r.err)
	}
}
