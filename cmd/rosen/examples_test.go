package main

// The README's module examples (examples/policy, examples/policy-mesh,
// examples/ratelimit, examples/cqrs) loaded by the real loaders, so that
// they cannot rot: a change to a loader that breaks one fails here.

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	_ "modernc.org/sqlite"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/cqrs/rules"
	"github.com/rosenmesh/rosen/cqrs/service"
	"github.com/rosenmesh/rosen/policy/authz"
	"github.com/rosenmesh/rosen/policy/ratelimit"
)

const (
	examplePolicyDir = "../../examples/policy"
	exampleMeshDir   = "../../examples/policy-mesh"
	exampleRLConfig  = "../../examples/ratelimit/config.yaml"
	exampleCQRSDir   = "../../examples/cqrs"
)

// TestExamplePolicyTestsPass is `rosen policy test examples/policy`: every
// Rego test and recorded check passes, and there are some of each (an
// example whose tests stopped loading must not pass by having none).
func TestExamplePolicyTestsPass(t *testing.T) {
	var out bytes.Buffer
	if err := policyTest(context.Background(), &out, examplePolicyDir, authz.DefaultQuery, true); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	m := regexp.MustCompile(`(\d+) rego tests, (\d+) recorded checks`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no summary in:\n%s", out.String())
	}
	if n, _ := strconv.Atoi(m[1]); n < 5 {
		t.Errorf("%s rego tests, want at least 5:\n%s", m[1], out.String())
	}
	if n, _ := strconv.Atoi(m[2]); n < 1 {
		t.Errorf("no recorded checks:\n%s", out.String())
	}
}

// TestExamplePolicyMeshLoads: examples/policy-mesh, served beside
// examples/bookinfo, passes the whole config gate (as `rosen validate` and
// `serve --config` run it) with a CUSTOM policy for provider "rosen" and a
// RateLimitPolicy whose domain is the one examples/ratelimit limits.
func TestExamplePolicyMeshLoads(t *testing.T) {
	mesh, _, err := checkConfig([]string{"../../examples/bookinfo", exampleMeshDir})
	if err != nil {
		t.Fatal(err)
	}
	if mesh.Security == nil {
		t.Fatal("no security policy loaded from " + exampleMeshDir)
	}
	custom := 0
	for _, ap := range mesh.Security.AuthorizationPolicies {
		if ap.Action == model.ActionCustom && ap.Provider == model.RosenAuthzProvider {
			custom++
		}
	}
	if custom != 1 {
		t.Errorf("%d CUSTOM policies for provider %q, want 1", custom, model.RosenAuthzProvider)
	}
	rl, err := ratelimit.LoadDir(exampleRLConfig)
	if err != nil {
		t.Fatal(err)
	}
	if len(mesh.Security.RateLimits) != 1 {
		t.Fatalf("%d RateLimitPolicies, want 1", len(mesh.Security.RateLimits))
	}
	if d := mesh.Security.RateLimits[0].Domain; !rl.HasDomain(d) {
		t.Errorf("RateLimitPolicy domain %q is not in %s", d, exampleRLConfig)
	}
}

// TestExampleRateLimitConfig loads examples/ratelimit/config.yaml into the
// RLS and asks it what the gateway would: the nested path/method limits,
// the wildcards, the unlimited user and a descriptor it does not limit.
func TestExampleRateLimitConfig(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) // start of a minute and an hour: no window rolls over
	s := ratelimit.New(ratelimit.Options{Now: func() time.Time { return now }})
	if err := s.Reload(exampleRLConfig); err != nil {
		t.Fatal(err)
	}
	ask := func(kv ...string) *rlsv3.RateLimitResponse_DescriptorStatus {
		t.Helper()
		d := &commonrl.RateLimitDescriptor{}
		for i := 0; i < len(kv); i += 2 {
			d.Entries = append(d.Entries, &commonrl.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
		}
		resp, err := s.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "bookinfo", Descriptors: []*commonrl.RateLimitDescriptor{d}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Statuses[0]
	}
	limitOf := func(st *rlsv3.RateLimitResponse_DescriptorStatus) string {
		if st.CurrentLimit == nil {
			return "none"
		}
		return strconv.Itoa(int(st.CurrentLimit.RequestsPerUnit)) + "/" + strings.ToLower(st.CurrentLimit.Unit.String())
	}
	for _, c := range []struct {
		entries []string
		want    string
	}{
		{[]string{"remote_address", "10.0.0.7"}, "600/minute"},
		{[]string{"path", "/api/v1/products/1/reviews", "method", "GET"}, "50/second"}, // wildcard, then exact method
		{[]string{"path", "/api/v1/products", "method", "DELETE"}, "10/minute"},        // wildcard, then any method
		{[]string{"path", "/productpage?u=normal", "method", "GET"}, "100/second"},
		{[]string{"path", "/reviews/1", "method", "GET"}, "none"}, // walks off the tree
		{[]string{"user", "jason"}, "1000/hour"},
		{[]string{"user", "partner-acme"}, "20000/hour"}, // wildcard beats the key-only limit
		{[]string{"user", "loadtest"}, "none"},           // unlimited
	} {
		if got := limitOf(ask(c.entries...)); got != c.want {
			t.Errorf("%v: limit %s, want %s", c.entries, got, c.want)
		}
	}
	// Writes to the product API: the 10 a minute are counted per path and method.
	for i := 1; i <= 10; i++ {
		if st := ask("path", "/api/v1/products/7", "method", "POST"); st.Code != rlsv3.RateLimitResponse_OK {
			t.Fatalf("write %d: %v", i, st.Code)
		}
	}
	if st := ask("path", "/api/v1/products/7", "method", "POST"); st.Code != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Errorf("11th write in a minute: %v, want OVER_LIMIT", st.Code)
	}
	if st := ask("path", "/api/v1/products/8", "method", "POST"); st.Code != rlsv3.RateLimitResponse_OK {
		t.Errorf("write to another product: %v, want OK", st.Code)
	}
}

// TestExampleCQRS runs the CQRS engine on examples/cqrs with a fresh data
// folder (where the relative SQLite dbName lands), posts the sample event as
// the README's curl does, and reads the row back; an event the rule's filter
// refuses writes nothing, and ratingWithdrawn deletes the row.
func TestExampleCQRS(t *testing.T) {
	files, err := rules.DirFiles(exampleCQRSDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files.Rules) == 0 || len(files.Databases) == 0 {
		t.Fatalf("files found in %s: %+v", exampleCQRSDir, files)
	}
	dataDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := service.Open(ctx, service.Options{Files: files, DataDir: dataDir})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; svc.Close() })

	h := svc.Handler()
	post := func(body []byte) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/api/cqrs/events", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			t.Fatalf("POST /api/cqrs/events: %d %s", rec.Code, rec.Body)
		}
	}
	sample, err := os.ReadFile(filepath.Join(exampleCQRSDir, "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	post(sample)
	// Out of the filter's range: no row for reviewer "bot".
	post([]byte(`{"type":"ratingSubmitted","key":"product-0","payload":{"product":{"id":0},"reviewer":"bot","stars":9,"comment":"spam"}}`))

	db, err := sql.Open("sqlite", filepath.Join(dataDir, "bookinfo-views.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := func() string {
		rs, err := db.Query(`SELECT product_id, reviewer, stars, comment_search, positive, event_id FROM ratings ORDER BY reviewer`)
		if err != nil {
			return err.Error()
		}
		defer rs.Close()
		var out []string
		for rs.Next() {
			var id, stars, positive int64
			var reviewer, search, eventID string
			if err := rs.Scan(&id, &reviewer, &stars, &search, &positive, &eventID); err != nil {
				return err.Error()
			}
			out = append(out, strings.Join([]string{strconv.FormatInt(id, 10), reviewer, strconv.FormatInt(stars, 10), search, strconv.FormatInt(positive, 10), eventID}, "|"))
		}
		return strings.Join(out, "\n")
	}
	want := "0|jason|5|an extremely entertaining play by shakespeare.|1|rating-0001"
	waitUntil(t, func() bool { return rows() == want }, func() string { return rows() })
	st := httptest.NewRecorder()
	h.ServeHTTP(st, httptest.NewRequest(http.MethodGet, "/api/cqrs/status", nil))
	if !strings.Contains(st.Body.String(), `"storeLastSeq":2`) {
		t.Errorf("status after two events: %s", st.Body)
	}

	post([]byte(`{"type":"ratingWithdrawn","key":"product-0","payload":{"product":{"id":0},"reviewer":"jason"}}`))
	waitUntil(t, func() bool { return rows() == "" }, func() string { return rows() })
}

func waitUntil(t *testing.T, cond func() bool, got func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting; have %q", got())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
