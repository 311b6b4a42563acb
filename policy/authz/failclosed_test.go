package authz

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func writePolicy(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

const header = "package envoy.authz\n\nimport rego.v1\n\n"

// TestFailClosed: a policy that errors, loops, conflicts or answers garbage
// is a deny with a reason, never a gRPC error.
func TestFailClosed(t *testing.T) {
	cases := []struct {
		name, src string
		status    int
		reason    string
	}{
		{"loops past the timeout", "allow if { count([x | some x in numbers.range(1, 100000000)]) > 0 }", 403, "did not finish"},
		{"conflicting outputs", "allow := true if { true }\nallow := false if { true }", 403, "policy evaluation failed"},
		{"undefined", "allow if { false }", 403, "undefined"},
		{"garbage result", `allow := "yes"`, 403, "bad policy result"},
		{"unknown result field", `allow := {"allowed": true, "alowed": true}`, 403, "unknown field"},
		{"status out of range", `allow := {"allowed": false, "http_status": 99}`, 403, "not an HTTP status"},
		{"allowed missing", `allow := {"http_status": 200}`, 403, "must be a boolean"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writePolicy(t, dir, "p.rego", header+c.src+"\n")
			reg := prometheus.NewRegistry()
			s := newTestServer(t, dir, Options{Timeout: 50 * time.Millisecond, Registry: reg})
			resp := check(t, s, checkRequest("GET", "/", nil, ""))
			if got := httpStatus(resp); got != c.status {
				t.Fatalf("status %d, want %d", got, c.status)
			}
			if !strings.Contains(resp.GetStatus().GetMessage(), c.reason) {
				t.Fatalf("reason %q, want %q", resp.GetStatus().GetMessage(), c.reason)
			}
			e := s.Decisions()[0]
			if e.Allowed || e.Reason == "" || e.PolicyVersion == "" {
				t.Fatalf("decision log entry %+v", e)
			}
			if n := testutil.ToFloat64(s.metrics.decisions.WithLabelValues("error")); n != 1 {
				t.Fatalf("error decisions %v", n)
			}
		})
	}
}

func TestNoPolicyDenies(t *testing.T) {
	s := New(Options{})
	if got := httpStatus(check(t, s, checkRequest("GET", "/", nil, ""))); got != 403 {
		t.Fatalf("status %d", got)
	}
}

// TestCompileErrorKeepsPrevious: a broken file is reported with file and
// line, and the policy in force does not change.
func TestCompileErrorKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "p.rego", header+"default allow := true\n")
	s := newTestServer(t, dir, Options{})
	v1 := s.Policy().Version

	writePolicy(t, dir, "broken.rego", header+"allow if {\n  input.x ==\n}\n")
	err := s.Reload(context.Background(), dir, "")
	if !errors.Is(err, ErrCompile) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(err.Error(), "broken.rego:7") {
		t.Fatalf("error does not name broken.rego:7: %v", err)
	}
	writePolicy(t, dir, "broken.rego", header+"allow if { undefined_fn(1) }\n")
	err = s.Reload(context.Background(), dir, "")
	if err == nil || !strings.Contains(err.Error(), "broken.rego:5") {
		t.Fatalf("compile error does not name broken.rego:5: %v", err)
	}
	if s.Policy().Version != v1 {
		t.Fatal("policy in force changed after a failed reload")
	}
	if got := httpStatus(check(t, s, checkRequest("GET", "/", nil, ""))); got != 200 {
		t.Fatalf("previous policy not in force: %d", got)
	}
}

func TestWatchReloads(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "p.rego", header+"default allow := false\n")
	s := newTestServer(t, dir, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Watch(ctx, dir, "", 10*time.Millisecond) }()
	v1 := s.Policy().Version
	time.Sleep(30 * time.Millisecond) // let Watch take its first fingerprint
	writePolicy(t, dir, "p.rego", header+"default allow := true\n")
	for s.Policy().Version == v1 {
		time.Sleep(10 * time.Millisecond)
	}
	if got := httpStatus(check(t, s, checkRequest("GET", "/", nil, ""))); got != 200 {
		t.Fatalf("status after reload %d", got)
	}
}

func TestDryRun(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "p.rego", header+"default allow := false\n")
	s := newTestServer(t, dir, Options{DryRun: true})
	if got := httpStatus(check(t, s, checkRequest("GET", "/", nil, ""))); got != 200 {
		t.Fatalf("dry run status %d", got)
	}
	e := s.Decisions()[0]
	if !e.DryRun || e.WouldAllow {
		t.Fatalf("entry %+v", e)
	}
	// Bad input is not policy: it is denied even in dry-run mode.
	if got := httpStatus(check(t, s, checkRequest("GET", "/%", nil, ""))); got != 400 {
		t.Fatalf("dry run bad input status %d", got)
	}
}

func TestRingKeepsNewest(t *testing.T) {
	r := NewRing(3)
	for i := 0; i < 5; i++ {
		r.Add(Entry{Status: i})
	}
	got := r.Entries()
	if len(got) != 3 || got[0].Status != 4 || got[2].Status != 2 {
		t.Fatalf("%+v", got)
	}
}
