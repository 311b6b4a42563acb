package authz

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestRegoTestsAndReplay(t *testing.T) {
	p, err := Load(context.Background(), "testdata/policy", "")
	if err != nil {
		t.Fatal(err)
	}
	tests, err := RunRegoTests(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(tests) != 2 {
		t.Fatalf("%d rego tests, want 2", len(tests))
	}
	for _, r := range tests {
		if !r.Pass {
			t.Errorf("%s: %s", r.Name, r.Detail)
		}
	}
	cases, err := LoadChecks("testdata/policy")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 4 {
		t.Fatalf("%d cases", len(cases))
	}
	for _, r := range Replay(context.Background(), p, cases) {
		if !r.Pass {
			t.Errorf("%s: %s", r.Name, r.Detail)
		}
	}
}

func TestReplayReportsMismatch(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "p.rego", header+"default allow := false\nallow if input.jwt.sub == \"alice\"\n")
	writePolicy(t, dir, "p_test.rego", header+"test_fails if allow\n")
	_ = os.WriteFile(filepath.Join(dir, "x.check.json"), []byte(`[
	 {"name": "alice", "jwt": {"sub": "alice"}, "request": {"attributes": {"request": {"http": {"path": "/"}}}}, "expect": {"allowed": true}},
	 {"name": "wrong", "request": {"attributes": {"request": {"http": {"path": "/"}}}}, "expect": {"allowed": true}},
	 {"name": "not a request", "request": {"attributes": {"nope": 1}}, "expect": {"allowed": true}}
	]`), 0o644)
	p, err := Load(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	tests, _ := RunRegoTests(context.Background(), p)
	if len(tests) != 1 || tests[0].Pass {
		t.Fatalf("failing rego test passed: %+v", tests)
	}
	cases, err := LoadChecks(dir)
	if err != nil {
		t.Fatal(err)
	}
	rs := Replay(context.Background(), p, cases)
	if !rs[0].Pass || rs[1].Pass || rs[2].Pass {
		t.Fatalf("%+v", rs)
	}
}

// Policy.Files are the paths as given: an absolute folder's files start
// with "/" (OPA's module keys drop it; /api/policy/status showed
// tmp/p/authz.rego).
func TestLoadedFilesKeepTheirPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte("package envoy.authz\n\nimport rego.v1\n\ndefault allow := false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "authz.rego"); len(p.Files) != 1 || p.Files[0] != want {
		t.Fatalf("files %v, want [%s]", p.Files, want)
	}
}
