package config

import (
	"fmt"
	"github.com/rosenmesh/rosen/controlplane/model"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

func TestWorkloadKindsAreSkippedNotRejected(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews-v1
spec:
  anything: goes
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: bookinfo-reviews
---
apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  ports:
  - port: 9080
    name: http
---
apiVersion: example.com/v1
kind: Deployment
metadata:
  name: not-the-real-one
`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadDirs(dir)
	if err == nil || !strings.Contains(err.Error(), `unknown kind "Deployment" (apiVersion "example.com/v1")`) {
		t.Fatalf("a Deployment of an unknown group must stay an error, got %v", err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "app.yaml"))
	cut := strings.Index(string(data), "---\napiVersion: example.com/v1")
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), data[:cut], 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := LoadDirs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Objects) != 1 || set.Objects[0].Kind != KindService {
		t.Fatalf("objects: %+v", set.Objects)
	}
	if len(set.Skipped) != 2 || set.Skipped[0].Kind != "Deployment" || set.Skipped[1].Kind != "ServiceAccount" {
		t.Fatalf("skipped: %+v", set.Skipped)
	}
}

// Istio's bookinfo.yaml (Services, ServiceAccounts, Deployments) loads as is.
func TestIstioBookinfoPlatformFileLoads(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "samples", "istio-bookinfo", "bookinfo.yaml")
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("samples missing under CI: %v", err)
		}
		t.Skip(err)
	}
	set, err := LoadDirs(path)
	if err != nil {
		t.Fatal(err)
	}
	services := 0
	for _, o := range set.Objects {
		if o.Kind == KindService {
			services++
		}
	}
	if services != 4 || len(set.Skipped) == 0 {
		t.Fatalf("services %d, skipped %d", services, len(set.Skipped))
	}
}

func TestLocatePointsAtTheFieldLine(t *testing.T) {
	objs, err := ParseYAML("vs.yaml", []byte(`# comment
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
  - match:
    - uri:
        regex: "(["
    route:
    - destination:
        host: reviews
`))
	if err != nil {
		t.Fatal(err)
	}
	set, _ := NewSet(objs)
	fe := model.Errorf(objs[0].Source(), "spec.http[1].match[0].uri.regex", "bad")
	set.Locate(model.Errors{fe})
	if fe.Source.File != "vs.yaml:14" {
		t.Fatalf("located at %s, want vs.yaml:14", fe.Source.File)
	}
	// A path that does not exist stops at its deepest existing ancestor.
	fe = model.Errorf(objs[0].Source(), "spec.http[1].route[0].destination.subset", "bad")
	set.Locate(fe)
	if fe.Source.File != "vs.yaml:16" {
		t.Fatalf("located at %s, want vs.yaml:16", fe.Source.File)
	}
	// Errors of other files are left alone.
	other := model.Errorf(model.Source{File: "other.yaml:1"}, "spec", "x")
	set.Locate(other)
	if other.Source.File != "other.yaml:1" {
		t.Fatal(other.Source.File)
	}
}

func TestHostileFilesAreRefusedNotRead(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.yaml"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.yaml")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := LoadDirs(dir); done <- err }()
	select {
	case err := <-done:
		msg := fmt.Sprint(err)
		for _, want := range []string{"pipe.yaml: not a regular file", "zero.yaml: not a regular file"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q lacks %q", msg, want)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LoadDirs blocked on a named pipe")
	}
}
