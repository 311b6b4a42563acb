package coordinator_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
)

// With HTTP_PROXY set, the coordinator dials the proxy and the proxy dials
// the participant, so the dial-time check saw only the proxy's address: a
// redirect to http://169.254.169.254/ (or a name, or 2852039166) was
// fetched by the proxy. A proxied participant is now checked before the
// proxy is asked. The environment's proxy is read once per process, so the
// coordinator runs in a child test process with HTTP_PROXY set.
func TestProxiedParticipantsAreChecked(t *testing.T) {
	if os.Getenv("ROSEN_TEST_PROXIED_CHILD") != "" {
		proxiedChild(t)
		return
	}
	var asked atomic.Value
	asked.Store("")
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Store(r.Method + " " + r.URL.String())
		_, _ = w.Write([]byte(`{"status":"SUCCESS"}`))
	}))
	t.Cleanup(proxy.Close)
	cmd := exec.Command(os.Args[0], "-test.run=^TestProxiedParticipantsAreChecked$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "ROSEN_TEST_PROXIED_CHILD=1", "HTTP_PROXY="+proxy.URL, "http_proxy="+proxy.URL,
		"NO_PROXY=", "no_proxy=", "REQUEST_METHOD=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if a := asked.Load().(string); a != "" {
		t.Fatalf("the proxy was asked for %s", a)
	}
	if !strings.Contains(string(out), "proxied-child-ran") {
		t.Fatalf("child did not run the checks:\n%s", out)
	}
}

func proxiedChild(t *testing.T) {
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	c, _ := start(t, sqliteStore(t), nil) // DefaultDenyNets
	ctx := context.Background()
	fast := &store.Policy{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond, Limit: 2}
	for id, u := range map[string]string{
		"redirect": redirector.URL + "/confirm", // 127.0.0.1 is not proxied; the redirect target is
		"decimal":  "http://2852039166/latest/meta-data/",
	} {
		if _, err := c.Begin(ctx, coordinator.BeginRequest{ID: id, Branches: []store.Branch{urlBranch("b", u)}, Policy: fast}); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if _, err := c.Commit(ctx, id, 0); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		tx := eventually(t, c, id, func(tx *store.Txn) bool { return tx.State == store.Stuck || tx.State == store.Committed })
		if tx.State != store.Stuck {
			t.Errorf("%s: %s through the proxy", id, tx.State)
		}
		t.Logf("%s: %s", id, tx.Branches[0].LastError)
		if id == "redirect" && !strings.Contains(tx.Branches[0].LastError, "participants may not use") {
			t.Errorf("%s: last error %q does not say the address is denied", id, tx.Branches[0].LastError)
		}
	}
	t.Log("proxied-child-ran")
}
