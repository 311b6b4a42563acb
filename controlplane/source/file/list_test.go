package file

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kubectlList is a `kubectl get services -o yaml` dump of services at ports.
func kubectlList(ports map[string]int) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: List\nitems:\n")
	for _, n := range []string{"a", "b", "c"} {
		fmt.Fprintf(&b, "- apiVersion: v1\n  kind: Service\n  metadata:\n    name: %s\n    namespace: default\n    resourceVersion: \"42\"\n    uid: 1f0e-%s\n  spec:\n    ports:\n    - port: %d\n  status:\n    loadBalancer: {}\n", n, n, ports[n])
	}
	b.WriteString("metadata:\n  resourceVersion: \"\"\n")
	return b.String()
}

// TestEditOneItemOfAList: an edit of one item of a List document is picked
// up (the List is re-parsed whole), the other items keep their values, and
// a bad edit to an item is reported at that item's line.
func TestEditOneItemOfAList(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dump.yaml")
	write(t, path, service("solo")+"---\n"+kubectlList(map[string]int{"a": 80, "b": 81, "c": 82}))
	ch := start(t, dir, 50*time.Millisecond)
	r := next(t, ch)
	if r.err != nil || names(r.set) != "a,b,c,solo" || portOf(t, r.set, "b") != 81 {
		t.Fatalf("initial = %v %v", r.set, r.err)
	}
	solo := r.set.Objects[3]

	write(t, path, service("solo")+"---\n"+kubectlList(map[string]int{"a": 80, "b": 9081, "c": 82}))
	r = next(t, ch)
	if r.err != nil || portOf(t, r.set, "b") != 9081 || portOf(t, r.set, "a") != 80 || portOf(t, r.set, "c") != 82 {
		t.Fatalf("after editing item b = %v %v", r.set, r.err)
	}
	if r.set.Objects[3] != solo {
		t.Error("the unchanged document beside the List was parsed again")
	}

	bad := strings.Replace(kubectlList(map[string]int{"a": 80, "b": 81, "c": 82}), "    - port: 82\n", "    - prot: 82\n", 1)
	write(t, path, service("solo")+"---\n"+bad)
	r = next(t, ch)
	if want := path + ":42: Service default/c: spec.ports[0]: unknown field \"prot\""; r.err == nil || r.err.Error() != want {
		t.Fatalf("bad item: %v, want %s", r.err, want)
	}
}
