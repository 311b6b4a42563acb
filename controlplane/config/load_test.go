package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

const svc = "apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec: {ports: [{port: 80}]}\n"

func TestLoadDirs(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "b.yaml"), strings.ReplaceAll(svc, "%s", "zeta"))
	write(t, filepath.Join(dir, "sub", "a.yml"), strings.ReplaceAll(svc, "%s", "alpha"))
	write(t, filepath.Join(dir, ".hidden", "x.yaml"), "not: [valid")
	write(t, filepath.Join(dir, ".x.yaml"), "not: [valid")
	write(t, filepath.Join(dir, "notes.txt"), "not: [valid")
	gw := "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: {servers: []}\n"
	write(t, filepath.Join(dir, "gw.yaml"), gw)
	set, err := LoadDirs(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range set.Objects {
		got = append(got, o.Kind+"/"+o.Name)
	}
	if want := "Gateway/g Service/alpha Service/zeta"; strings.Join(got, " ") != want {
		t.Errorf("objects = %v, want %s", got, want)
	}
	// A single file path works too.
	if set, err := LoadDirs(filepath.Join(dir, "b.yaml")); err != nil || len(set.Objects) != 1 {
		t.Errorf("single file: %v %v", set, err)
	}
}

func TestLoadDirsDuplicate(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), strings.ReplaceAll(svc, "%s", "x"))
	write(t, filepath.Join(dir, "b.yaml"), "# dup\n"+strings.ReplaceAll(svc, "%s", "x"))
	_, err := LoadDirs(dir)
	want := filepath.Join(dir, "b.yaml") + ":2: Service default/x: metadata.name: duplicate Service default/x, first defined at " + filepath.Join(dir, "a.yaml") + ":1"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestLoadDirsMissing(t *testing.T) {
	if _, err := LoadDirs(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("no error for a missing folder")
	}
}
