package file

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/istio"
	"github.com/rosenmesh/rosen/controlplane/model"
)

func setMtime(t *testing.T, path string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func portOf(t *testing.T, set *config.Set, name string) int32 {
	t.Helper()
	for _, o := range set.Objects {
		if o.Name == name {
			return o.Spec.(*corev1.Service).Spec.Ports[0].Port
		}
	}
	t.Fatalf("no object %s in %s", name, names(set))
	return 0
}

// TestParseCacheReparsesOnlyChangedFiles pins the cache's rules: an
// unchanged file is not parsed again (and, once its mtime is old enough to
// be trusted, not even read), a changed one is, and the result is what
// config.LoadDirs gives.
func TestParseCacheReparsesOnlyChangedFiles(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, n := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, n+".yaml")
		write(t, p, service(n))
		setMtime(t, p, old)
	}
	c := newParseCache()
	load := func(step string, wantRead, wantParsed int) *config.Set {
		t.Helper()
		set, st, err := c.load([]string{dir})
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if st.read != wantRead || st.parsed != wantParsed || st.files != 3 {
			t.Fatalf("%s: read %d parsed %d of %d files, want read %d parsed %d", step, st.read, st.parsed, st.files, wantRead, wantParsed)
		}
		want, err := config.LoadDirs(dir)
		if err != nil {
			t.Fatal(err)
		}
		if names(set) != names(want) {
			t.Fatalf("%s: cached load %s, LoadDirs %s", step, names(set), names(want))
		}
		for _, o := range want.Objects {
			if got := portOf(t, set, o.Name); got != o.Spec.(*corev1.Service).Spec.Ports[0].Port {
				t.Fatalf("%s: %s port %d differs from a fresh parse", step, o.Name, got)
			}
		}
		return set
	}

	first := load("first", 3, 3)
	second := load("unchanged", 0, 0)
	if first.Objects[0] != second.Objects[0] {
		t.Error("unchanged file parsed into new objects")
	}

	// A real edit with a new mtime: only that file is parsed again.
	b := filepath.Join(dir, "b.yaml")
	write(t, b, strings.Replace(service("b"), "port: 80", "port: 81", 1))
	setMtime(t, b, old.Add(time.Minute))
	load("edited", 1, 1)
	if got := portOf(t, load("edited again", 0, 0), "b"); got != 81 {
		t.Fatalf("b port %d, want 81", got)
	}

	// Touched without a change: read, hashed, not parsed.
	setMtime(t, b, old.Add(2*time.Minute))
	load("touched", 1, 0)

	// Racy: rewritten with the same size within the same mtime tick. The
	// mtime is recent, so the cache does not trust it and reads the file.
	now := time.Now().Truncate(time.Second)
	write(t, b, strings.Replace(service("b"), "port: 80", "port: 82", 1))
	setMtime(t, b, now)
	load("recent", 1, 1)
	write(t, b, strings.Replace(service("b"), "port: 80", "port: 83", 1))
	setMtime(t, b, now)
	if got := portOf(t, load("same size, same mtime", 1, 1), "b"); got != 83 {
		t.Fatalf("b port %d after a same-size rewrite in the same mtime tick, want 83", got)
	}
}

func TestParseCacheKeepsErrorsAndForgetsRemovedFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), service("a"))
	bad := filepath.Join(dir, "bad.yaml")
	write(t, bad, "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {portz: []}\n")
	c := newParseCache()
	for i := 0; i < 2; i++ { // the second load takes bad.yaml's error from the cache
		if _, _, err := c.load([]string{dir}); err == nil || !strings.Contains(err.Error(), "portz") {
			t.Fatalf("load %d: error %v, want the unknown field", i, err)
		}
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	set, _, err := c.load([]string{dir})
	if err != nil || names(set) != "a" {
		t.Fatalf("after removing the bad file: %v, %v", err, names(set))
	}
	if len(c.files) != 1 {
		t.Fatalf("cache holds %d files, want 1", len(c.files))
	}
}

// TestCachedObjectsSurviveBuild: the cache hands the same objects to every
// build, so istio.Build must not modify them. Building the example mesh
// twice from one parse gives the same mesh, and so does a fresh parse.
func TestCachedObjectsSurviveBuild(t *testing.T) {
	dir := "../../../examples/bookinfo"
	c := newParseCache()
	set, _, err := c.load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var hashes [][32]byte
	for i := 0; i < 2; i++ {
		m, err := istio.Build(set)
		if err != nil {
			t.Fatal(err)
		}
		h, err := model.StructureHash(m)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	fresh, err := config.LoadDirs(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := istio.Build(fresh)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := model.StructureHash(m)
	if hashes[0] != hashes[1] || hashes[0] != h {
		t.Fatal("building from cached objects gives a different mesh the second time")
	}
}
