package rest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/rest"
	"github.com/rosenmesh/rosen/txn/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func setup(t *testing.T) (*httptest.Server, string, *atomic.Int32) {
	s, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "txn.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := coordinator.New(coordinator.Options{Store: s, Log: zaptest.NewLogger(t), Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	srv := httptest.NewServer(rest.New(c, zaptest.NewLogger(t)))
	var confirms atomic.Int32
	part := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(coordinator.HeaderPhase) == "confirm" && r.Header.Get(coordinator.HeaderTwistID) != "" {
			confirms.Add(1)
		}
	}))
	t.Cleanup(func() { srv.Close(); part.Close(); cancel(); <-done; _ = s.Close() })
	return srv, part.URL, &confirms
}

func do(t *testing.T, method, url, body string, hdr ...string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	_ = json.Unmarshal(raw, &v)
	return resp.StatusCode, v, resp.Header
}

func TestNativeAPI(t *testing.T) {
	srv, part, confirms := setup(t)
	base := srv.URL + "/api/txn/transactions"
	code, v, _ := do(t, "POST", base, `{"id":"order-1","timeout":"30s","retry":{"initial":"10ms","max":"1s","limit":3},"headers":{"X-Tenant":"a"}}`)
	if code != 201 || v["state"] != "trying" || v["id"] != "order-1" {
		t.Fatalf("begin %d %v", code, v)
	}
	code, v, _ = do(t, "POST", base+"/order-1/branches", `{"branch_id":"pay","confirm":"`+part+`/c","cancel":"`+part+`/k","payload":{"amount":3}}`)
	if code != 201 {
		t.Fatalf("register %d %v", code, v)
	}
	code, v, _ = do(t, "POST", base+"/order-1/commit?wait=30s", ``)
	if code != 200 || v["state"] != "committed" || confirms.Load() != 1 {
		t.Fatalf("commit %d %v", code, v)
	}
	code, v, _ = do(t, "GET", base+"/order-1", ``)
	br := v["branches"].([]any)[0].(map[string]any)
	if code != 200 || br["state"] != "confirmed" || br["confirm"].(map[string]any)["body"].(map[string]any)["amount"] != 3.0 {
		t.Fatalf("get %d %v", code, v)
	}
	code, v, _ = do(t, "GET", base+"?state=committed&limit=5", ``)
	if code != 200 || len(v["transactions"].([]any)) != 1 {
		t.Fatalf("list %d %v", code, v)
	}
	// Bad input: a clear error and a defined status, never a crash.
	cases := []struct {
		method, path, body string
		want               int
	}{
		{"POST", base, `{"id":`, 400},
		{"POST", base, `{"timeout":"soon"}`, 400},
		{"POST", base, `{"id":"order-1"}`, 409},
		{"POST", base, `{"id":"bad id!"}`, 400},
		{"GET", base + "/nope", ``, 404},
		{"POST", base + "/nope/commit", ``, 404},
		{"POST", base + "/order-1/abort", ``, 409},
		{"POST", base + "/order-1/branches", `{"branch_id":"late","confirm":"` + part + `/c"}`, 409},
		{"POST", base + "/order-1/commit?wait=forever", ``, 400},
		{"GET", base + "?limit=0", ``, 400},
		{"GET", base + "?state=weird", ``, 400},
		{"POST", base + "/order-1/retry", ``, 409},
		{"POST", base, `{"branches":[{"branch_id":"x","confirm":"not a url"}]}`, 400},
		{"POST", base, strings.Repeat(" ", 3<<20), 413},
	}
	for _, tc := range cases {
		code, v, _ := do(t, tc.method, tc.path, tc.body)
		if code != tc.want || v["error"] == "" {
			t.Errorf("%s %s %.40q: %d %v, want %d", tc.method, tc.path, tc.body, code, v, tc.want)
		}
	}
}

func TestTwistShapes(t *testing.T) {
	srv, part, confirms := setup(t)
	base := srv.URL + "/api/transactions"
	code, v, hdr := do(t, "POST", base, `{"mode":"tcc"}`)
	id, _ := v["transactionID"].(string)
	if code != 201 || v["success"] != true || id == "" || hdr.Get("Twist-Transaction-ID") != id {
		t.Fatalf("create %d %v %v", code, v, hdr)
	}
	tasks := `{"tasks":[{"confirm":{"url":"` + part + `/c","body":{"n":1}},"cancel":{"url":"` + part + `/k"}},
		{"id":"stock","confirm":{"url":"` + part + `/c2","method":"PUT"},"cancel":{"url":"` + part + `/k2","method":"DELETE"}}]}`
	if code, v, _ := do(t, "PUT", base+"/"+id, tasks); code != 200 || v["success"] != true {
		t.Fatalf("tasks %d %v", code, v)
	}
	if code, v, _ := do(t, "POST", base+"/"+id, ``); code != 200 || v["success"] != true || v["state"] != "committed" || confirms.Load() != 2 {
		t.Fatalf("confirm %d %v", code, v)
	}
	// A client-chosen id in the header, then cancel.
	code, v, _ = do(t, "POST", base, ``, "Twist-Transaction-ID", "twist-42")
	if code != 201 || v["transactionID"] != "twist-42" {
		t.Fatalf("create with id %d %v", code, v)
	}
	if code, v, _ := do(t, "DELETE", base+"/twist-42", ``); code != 200 || v["state"] != "aborted" || v["success"] != true {
		t.Fatalf("cancel %d %v", code, v)
	}
	if code, _, _ := do(t, "POST", base+"/twist-42", ``); code != 409 {
		t.Fatalf("confirm after cancel: %d", code)
	}
	if code, _, _ := do(t, "POST", base, `{"mode":"saga"}`); code != 400 {
		t.Fatalf("unsupported mode: %d", code)
	}
	if code, _, _ := do(t, "PUT", base+"/"+id, `{"tasks":[]}`); code != 400 {
		t.Fatalf("no tasks: %d", code)
	}
}
