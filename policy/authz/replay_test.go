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
