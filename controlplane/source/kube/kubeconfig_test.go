package kube

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func writeKubeconfig(t *testing.T, dir, file, cluster, server string) string {
	t.Helper()
	p := filepath.Join(dir, file)
	doc := `apiVersion: v1
kind: Config
clusters:
- name: ` + cluster + `
  cluster: {server: "` + server + `"}
users:
- name: u
  user: {token: t}
contexts:
- name: ctx
  context: {cluster: ` + cluster + `, user: u}
current-context: ctx
`
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadKubeconfigs(t *testing.T) {
	dir := t.TempDir()
	a := writeKubeconfig(t, dir, "a.yaml", "east", "https://127.0.0.1:1")
	folder := filepath.Join(dir, "more")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	writeKubeconfig(t, folder, "1.yaml", "west", "https://127.0.0.1:2")
	writeKubeconfig(t, folder, "2.yaml", "north", "https://127.0.0.1:3")
	got, err := LoadKubeconfigs([]string{a, "south=" + a, folder}, "Kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range got {
		ids = append(ids, c.ID)
	}
	if want := "east south west north"; joinIDs(ids) != want {
		t.Fatalf("ids %q, want %q", joinIDs(ids), want)
	}
	if got[0].REST.QPS < 50 || got[0].REST.Host != "https://127.0.0.1:1" {
		t.Errorf("rest config %+v", got[0].REST)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("clusters: [[["), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		in   []string
		want error
	}{
		{"none", nil, ErrNoClusters},
		{"same id twice", []string{a, a}, ErrDuplicateCluster},
		{"missing file", []string{filepath.Join(dir, "nope.yaml")}, ErrKubeconfig},
		{"not a kubeconfig", []string{bad}, ErrKubeconfig},
		{"empty folder", []string{t.TempDir()}, ErrKubeconfig},
		{"id on a folder", []string{"x=" + folder}, ErrKubeconfig},
	}
	for _, c := range cases {
		if _, err := LoadKubeconfigs(c.in, "Kubernetes"); !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
}

func joinIDs(ids []string) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += " "
		}
		s += id
	}
	return s
}
