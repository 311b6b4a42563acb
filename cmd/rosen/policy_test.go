package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/rosenmesh/rosen/console"
	"github.com/rosenmesh/rosen/policy/authz"
)

// serveWith runs serve on free ports with the modules' global flags changed
// by set (and put back afterwards), and returns its error; serve must fail
// at start, so a nil error (the server ran) is a test failure.
func serveWith(t *testing.T, set func()) error {
	t.Helper()
	savedPolicy, savedCQRS := *policyOpts, *cqrsOpts
	t.Cleanup(func() { *policyOpts, *cqrsOpts = savedPolicy, savedCQRS })
	set()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f := &serveFlags{configDirs: []string{"../../examples/bookinfo"}, grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", dataDir: t.TempDir(), debounce: time.Millisecond}
	err := serve(ctx, zap.NewNop(), f, false)
	if err == nil {
		t.Fatal("serve started")
	}
	return err
}

// TestServeRefusesAMissingPolicyDir: --policy-dir naming no folder is an
// error naming the flag and the path (exit 1), as --ratelimit-config is,
// not a server that denies everything and logs every second.
func TestServeRefusesAMissingPolicyDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	err := serveWith(t, func() { policyOpts.dir = missing })
	want := "policy: --policy-dir " + missing + ": no such file or directory"
	if err.Error() != want || exitCode(err) != 1 {
		t.Fatalf("got %q (exit %d), want %q (exit 1)", err, exitCode(err), want)
	}
}

// TestServeRefusesANegativeDebounce: --debounce -1s was accepted.
func TestServeRefusesANegativeDebounce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f := &serveFlags{configDirs: []string{"../../examples/bookinfo"}, grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", dataDir: t.TempDir(), debounce: -time.Second}
	if err := serve(ctx, zap.NewNop(), f, false); err == nil || err.Error() != "--debounce -1s: want 0 or more" {
		t.Fatalf("got %v", err)
	}
}

// TestServeCQRSErrorHasOnePrefix: serve prefixes the module's name once.
func TestServeCQRSErrorHasOnePrefix(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	err := serveWith(t, func() { cqrsOpts.dir = missing })
	if !strings.HasPrefix(err.Error(), "cqrs: ") || strings.HasPrefix(err.Error(), "cqrs: cqrs: ") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("got %q, want one cqrs: prefix and the path", err)
	}
}

type policyStatusDoc struct {
	PolicyVersion      string        `json:"policy_version"`
	RatelimitVersion   string        `json:"ratelimit_version"`
	PolicyRejection    *rejectionDoc `json:"policy_rejection"`
	RatelimitRejection *rejectionDoc `json:"ratelimit_rejection"`
}

type rejectionDoc struct {
	Path    string    `json:"path"`
	Error   string    `json:"error"`
	Time    time.Time `json:"time"`
	InForce string    `json:"in_force"`
}

// TestPolicyStatusShowsRejections: a policy edit that does not compile and
// a bad rate-limit edit each show in /api/policy/status (error with file
// and line, when, the version in force), in /debug/config-errors with their
// source and in `rosen status`; a good edit clears each.
func TestPolicyStatusShowsRejections(t *testing.T) {
	pdir, rdir := t.TempDir(), t.TempDir()
	rego := filepath.Join(pdir, "authz.rego")
	limits := filepath.Join(rdir, "limits.yaml")
	write := func(path, src string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const good = "package envoy.authz\n\nimport rego.v1\n\ndefault allow := false\n"
	const goodLimits = "domain: shop\ndescriptors:\n  - key: remote_address\n    rate_limit:\n      unit: minute\n      requests_per_unit: 3\n"
	write(rego, good)
	write(limits, goodLimits)

	f := &policyFlags{dir: pdir, query: authz.DefaultQuery, timeout: 100 * time.Millisecond, maxBody: 1 << 20,
		jwtSkew: time.Minute, rlConfig: rdir, rlHeaders: true, pollPeriod: 5 * time.Millisecond}
	httpServer := console.New(console.Options{})
	env := &moduleEnv{Log: zap.NewNop(), Registry: prometheus.NewRegistry(), GRPC: grpc.NewServer(), HTTP: httpServer, DataDir: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	run, err := f.start(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	web := httptest.NewServer(httpServer.Handler())
	defer web.Close()

	status := func() policyStatusDoc {
		t.Helper()
		rec := get(t, httpServer, "/api/policy/status")
		var st policyStatusDoc
		if err := json.Unmarshal(rec, &st); err != nil {
			t.Fatalf("%v: %s", err, rec)
		}
		return st
	}
	waitUntil := func(what string, cond func(policyStatusDoc) bool) policyStatusDoc {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := status()
			if cond(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %+v", what, st)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	st := status()
	if st.PolicyRejection != nil || st.RatelimitRejection != nil || st.PolicyVersion == "" || st.RatelimitVersion == "" {
		t.Fatalf("healthy start: %+v", st)
	}
	p1, r1 := st.PolicyVersion, st.RatelimitVersion

	time.Sleep(20 * time.Millisecond) // the watchers' first fingerprint
	write(rego, good+"x := \"open\n")
	st = waitUntil("broken policy", func(s policyStatusDoc) bool { return s.PolicyRejection != nil })
	if r := st.PolicyRejection; !strings.Contains(r.Error, "authz.rego:6") || r.InForce != p1 || r.Path != pdir || r.Time.IsZero() || st.PolicyVersion != p1 {
		t.Fatalf("policy rejection %+v (in force %s, want %s)", r, st.PolicyVersion, p1)
	}
	write(limits, strings.Replace(goodLimits, "unit: minute", "unit: fortnight", 1))
	st = waitUntil("broken limits", func(s policyStatusDoc) bool { return s.RatelimitRejection != nil })
	if r := st.RatelimitRejection; !strings.Contains(r.Error, "limits.yaml") || r.InForce != r1 || st.RatelimitVersion != r1 {
		t.Fatalf("rate-limit rejection %+v", r)
	}

	var doc struct {
		Errors       []json.RawMessage     `json:"errors"`
		ModuleErrors []console.ModuleError `json:"moduleErrors"`
	}
	if err := json.Unmarshal(get(t, httpServer, "/debug/config-errors"), &doc); err != nil || len(doc.Errors) != 0 || len(doc.ModuleErrors) != 2 ||
		doc.ModuleErrors[0].Source != "policy" || doc.ModuleErrors[1].Source != "ratelimit" || doc.ModuleErrors[0].InForce != p1 {
		t.Fatalf("/debug/config-errors: %v %+v", err, doc)
	}
	var out bytes.Buffer
	if err := printModuleErrors(&out, web.Client(), strings.TrimPrefix(web.URL, "http://")); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); strings.Count(s, "\n") != 2 || !strings.Contains(s, "policy: REJECTED "+pdir) || !strings.Contains(s, "authz.rego:6") ||
		!strings.Contains(s, "ratelimit: REJECTED "+rdir) || !strings.Contains(s, "in force: "+p1) {
		t.Fatalf("rosen status:\n%s", s)
	}

	write(rego, strings.Replace(good, "false", "true", 1))
	st = waitUntil("fixed policy", func(s policyStatusDoc) bool { return s.PolicyRejection == nil })
	if st.PolicyVersion == p1 || st.RatelimitRejection == nil {
		t.Fatalf("after fixing the policy: %+v", st)
	}
	write(limits, goodLimits)
	waitUntil("fixed limits", func(s policyStatusDoc) bool { return s.RatelimitRejection == nil })
	out.Reset()
	if err := printModuleErrors(&out, web.Client(), strings.TrimPrefix(web.URL, "http://")); err != nil || out.Len() != 0 {
		t.Fatalf("rosen status after the fixes: %v %q", err, out.String())
	}
}

func get(t *testing.T, s *console.Server, path string) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}
