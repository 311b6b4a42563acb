package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rosenmesh/rosen/controlplane/model"
)

type fakeControlPlane struct {
	ready bool
	errs  []*model.FieldError
}

func (f *fakeControlPlane) Ready() bool                       { return f.ready }
func (f *fakeControlPlane) Syncz() any                        { return map[string]any{"nodes": []string{"n1"}} }
func (f *fakeControlPlane) ConfigErrors() []*model.FieldError { return f.errs }

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestProbesAndDebug(t *testing.T) {
	cp := &fakeControlPlane{}
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "rosen_test_total", Help: "test"})
	reg.MustRegister(c)
	s := New(Options{Gatherer: reg, ControlPlane: cp, Version: "v-test"})
	h := s.Handler()

	if rec := get(t, h, "GET", "/healthz"); rec.Code != 200 {
		t.Fatalf("/healthz %d", rec.Code)
	}
	if rec := get(t, h, "HEAD", "/healthz"); rec.Code != 200 {
		t.Fatalf("HEAD /healthz %d", rec.Code)
	}
	// Not ready until a first good config is served; the body says why.
	cp.errs = []*model.FieldError{{Source: model.Source{File: "a.yaml:3"}, Field: "spec.hosts", Message: "required"}}
	rec := get(t, h, "GET", "/readyz")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "a.yaml:3") {
		t.Fatalf("/readyz before ready: %d %s", rec.Code, rec.Body)
	}
	if rec := get(t, h, "HEAD", "/readyz"); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("HEAD /readyz before ready: %d", rec.Code)
	}
	cp.ready = true
	if rec := get(t, h, "GET", "/readyz"); rec.Code != 200 {
		t.Fatalf("/readyz when ready: %d", rec.Code)
	}
	if rec := get(t, h, "HEAD", "/readyz"); rec.Code != 200 {
		t.Fatalf("HEAD /readyz when ready: %d", rec.Code)
	}

	rec = get(t, h, "GET", "/debug/config-errors")
	var doc struct {
		Errors []model.FieldError `json:"errors"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || len(doc.Errors) != 1 || doc.Errors[0].Field != "spec.hosts" {
		t.Fatalf("/debug/config-errors: %v %s", err, rec.Body)
	}
	cp.errs = nil
	if rec := get(t, h, "GET", "/debug/config-errors"); !strings.Contains(rec.Body.String(), `"errors": []`) {
		t.Fatalf("no errors must be an empty list, got %s", rec.Body)
	}
	if rec := get(t, h, "GET", "/debug/syncz"); rec.Code != 200 || !strings.Contains(rec.Body.String(), "n1") {
		t.Fatalf("/debug/syncz: %d %s", rec.Code, rec.Body)
	}
	c.Inc()
	if rec := get(t, h, "GET", "/metrics"); !strings.Contains(rec.Body.String(), "rosen_test_total 1") {
		t.Fatalf("/metrics lacks the registry's metric:\n%s", rec.Body)
	}
	if rec := get(t, h, "GET", "/version"); !strings.Contains(rec.Body.String(), "v-test") {
		t.Fatalf("/version: %s", rec.Body)
	}
}

func TestHostileRequestsGetErrorsNotPanics(t *testing.T) {
	h := New(Options{ControlPlane: &fakeControlPlane{}}).Handler()
	for _, tc := range []struct{ method, path string }{
		{"GET", "/nope"},
		{"DELETE", "/healthz"},
		{"GET", "/debug/../../etc/passwd"},
		{"GET", "/" + strings.Repeat("a", 100000)},
	} {
		rec := get(t, h, tc.method, tc.path)
		if rec.Code < 400 {
			t.Errorf("%s %s: %d", tc.method, tc.path[:min(len(tc.path), 40)], rec.Code)
		}
		if !strings.Contains(rec.Body.String(), "error") {
			t.Errorf("%s: body %q is not a JSON error", tc.method, rec.Body)
		}
	}
}

func TestMount(t *testing.T) {
	s := New(Options{})
	s.Mount("/api/things", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("thing " + r.URL.Path))
	}))
	for _, p := range []string{"/api/things", "/api/things/42"} {
		rec := get(t, s.Handler(), "GET", p)
		if rec.Code != 200 || rec.Body.String() != "thing "+p {
			t.Errorf("%s: %d %q", p, rec.Code, rec.Body)
		}
	}
}

// GET / lists what the server serves, mounted modules included, once each.
func TestIndexListsPaths(t *testing.T) {
	s := New(Options{Version: "v-test"})
	s.Mount("/api/things", http.NotFoundHandler())
	rec := get(t, s.Handler(), "GET", "/")
	var v struct {
		Name, Version string
		Paths         []string
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &v) != nil || v.Name != "rosen" || v.Version != "v-test" {
		t.Fatalf("GET /: %d %s", rec.Code, rec.Body)
	}
	want := map[string]bool{"/api/things": true, "/healthz": true, "/readyz": true, "/debug/syncz": true, "/debug/config-errors": true}
	seen := map[string]int{}
	for _, p := range v.Paths {
		seen[p]++
		delete(want, p)
	}
	if len(want) != 0 || seen["/api/things"] != 1 || seen["/"] != 0 {
		t.Fatalf("paths %v, missing %v", v.Paths, want)
	}
}

func TestPprof(t *testing.T) {
	h := New(Options{}).Handler()
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1"} {
		if rec := get(t, h, "GET", p); rec.Code != 200 {
			t.Errorf("%s: %d", p, rec.Code)
		}
	}
	// The command line may hold credentials (database URLs): not served.
	if rec := get(t, h, "GET", "/debug/pprof/cmdline"); rec.Code != 404 || strings.Contains(rec.Body.String(), os.Args[0]) {
		t.Errorf("/debug/pprof/cmdline: %d %s", rec.Code, rec.Body)
	}
}

type fakeRejections []ModuleError

func (f *fakeRejections) Rejections() []ModuleError { return *f }

// TestConfigErrorsListsModuleErrors: a module's refused load (a policy that
// does not compile) shows under "moduleErrors" with its source, beside the
// control plane's "errors", whose shape and meaning do not change; /readyz
// stays about the control plane.
func TestConfigErrorsListsModuleErrors(t *testing.T) {
	cp := &fakeControlPlane{ready: true}
	s := New(Options{ControlPlane: cp})
	h := s.Handler()
	if rec := get(t, h, "GET", "/debug/config-errors"); !strings.Contains(rec.Body.String(), `"moduleErrors": []`) {
		t.Fatalf("no module errors must be an empty list, got %s", rec.Body)
	}
	rj := &fakeRejections{}
	s.AddRejections(rj)
	*rj = fakeRejections{{Source: "policy", Path: "/p", Message: "/p/authz.rego:7: non-terminated string", InForce: "abc"}}
	rec := get(t, h, "GET", "/debug/config-errors")
	var doc struct {
		Errors       []model.FieldError `json:"errors"`
		ModuleErrors []ModuleError      `json:"moduleErrors"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || len(doc.Errors) != 0 || len(doc.ModuleErrors) != 1 ||
		doc.ModuleErrors[0].Source != "policy" || !strings.Contains(doc.ModuleErrors[0].Message, "authz.rego:7") {
		t.Fatalf("/debug/config-errors: %v %s", err, rec.Body)
	}
	if !strings.Contains(rec.Body.String(), `"errors": []`) {
		t.Fatalf("errors must stay an empty list: %s", rec.Body)
	}
	if rec := get(t, h, "GET", "/readyz"); rec.Code != 200 {
		t.Fatalf("a policy rejection made the control plane unready: %d", rec.Code)
	}
	*rj = nil
	if rec := get(t, h, "GET", "/debug/config-errors"); !strings.Contains(rec.Body.String(), `"moduleErrors": []`) {
		t.Fatalf("cleared module errors: %s", rec.Body)
	}
}
