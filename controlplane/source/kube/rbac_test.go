package kube

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// TestClusterRoleGrantsExactlyWhatRosenDoes: manifests/rbac.yaml's
// ClusterRole allows get/list/watch on exactly the kinds watched, patch on
// exactly the /status of the kinds whose status Rosen writes, and
// create/patch on events; nothing else.
func TestClusterRoleGrantsExactlyWhatRosenDoes(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "manifests", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role *rbacv1.ClusterRole
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		var r rbacv1.ClusterRole
		if err := yaml.Unmarshal(doc, &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind == "ClusterRole" && r.Name == "rosen" {
			role = &r
		}
	}
	if role == nil {
		t.Fatal("no ClusterRole rosen in manifests/rbac.yaml")
	}
	got := map[string]bool{}
	for _, rule := range role.Rules {
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, v := range rule.Verbs {
					got[g+"/"+res+" "+v] = true
				}
			}
		}
	}
	want := map[string]bool{"/events create": true, "/events patch": true}
	for _, k := range watchedKinds {
		for _, v := range []string{"get", "list", "watch"} {
			want[k.Group+"/"+k.Resource+" "+v] = true
		}
		if statusKind(k.Kind) != nil {
			want[k.Group+"/"+k.Resource+"/status patch"] = true
		}
	}
	diff := func(a, b map[string]bool) string {
		var out []string
		for k := range a {
			if !b[k] {
				out = append(out, k)
			}
		}
		sort.Strings(out)
		return strings.Join(out, ", ")
	}
	if extra := diff(got, want); extra != "" {
		t.Errorf("the ClusterRole grants more than Rosen uses: %s", extra)
	}
	if missing := diff(want, got); missing != "" {
		t.Errorf("the ClusterRole lacks what Rosen uses: %s", missing)
	}
}
