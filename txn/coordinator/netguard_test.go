package coordinator_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
)

func sqliteStore(t *testing.T) store.Store {
	t.Helper()
	s, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "txn.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func urlBranch(id, confirm string) store.Branch {
	return store.Branch{ID: id, Confirm: store.Action{URL: confirm}, Cancel: store.Action{URL: confirm}}
}

// By default, branches naming a link-local or cloud metadata address are
// refused when registered, with the network in the error.
func TestMetadataAddressesAreRefusedByDefault(t *testing.T) {
	c, _ := start(t, sqliteStore(t), nil)
	ctx := context.Background()
	tx, err := c.Begin(ctx, coordinator.BeginRequest{ID: "ssrf-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"https://169.254.169.254:443/computeMetadata/v1/",
		"http://[fe80::1%25eth0]:8080/confirm",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://[::ffff:169.254.169.254]/", // IPv4-mapped
		"grpc://169.254.169.254:50051/pkg.Svc/Confirm",
	} {
		err := c.Register(ctx, tx.ID, urlBranch("b", u))
		if !errors.Is(err, coordinator.ErrBadInput) || !strings.Contains(err.Error(), "participants may not use") {
			t.Errorf("%s: %v", u, err)
		}
		if err := c.CheckBranch(urlBranch("b", u)); !errors.Is(err, coordinator.ErrBadInput) {
			t.Errorf("CheckBranch %s: %v", u, err)
		}
		if _, err := c.Begin(ctx, coordinator.BeginRequest{Branches: []store.Branch{urlBranch("b", u)}}); !errors.Is(err, coordinator.ErrBadInput) {
			t.Errorf("Begin with %s: %v", u, err)
		}
	}
	// The message names the branch, the phase and the network.
	err = c.Register(ctx, tx.ID, store.Branch{ID: "meta", Confirm: store.Action{URL: "http://10.0.0.1/ok"}, Cancel: store.Action{URL: "http://169.254.169.254/x"}})
	if err == nil || !strings.Contains(err.Error(), "branch meta: cancel URL") || !strings.Contains(err.Error(), "169.254.0.0/16") {
		t.Fatalf("error: %v", err)
	}
	// Ordinary addresses and names are accepted.
	for i, u := range []string{"http://127.0.0.1:9/c", "http://10.1.2.3/c", "http://payments.default.svc.cluster.local/c", "grpc://[::1]:50051/pkg.Svc/Confirm"} {
		if err := c.Register(ctx, tx.ID, urlBranch("ok"+strconv.Itoa(i), u)); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// An empty, non-nil DenyNets allows every address (--txn-deny-nets "").
func TestEmptyDenyNetsAllowsAll(t *testing.T) {
	c, _ := start(t, sqliteStore(t), func(o *coordinator.Options) { o.DenyNets = []netip.Prefix{} })
	ctx := context.Background()
	if _, err := c.Begin(ctx, coordinator.BeginRequest{Branches: []store.Branch{urlBranch("b", "http://169.254.169.254/x")}}); err != nil {
		t.Fatal(err)
	}
}

// A name that resolves into a denied network, and a redirect into one, are
// caught when the coordinator connects: the participant behind it is never
// called and the branch says why.
func TestDeniedAddressesAreNeverDialled(t *testing.T) {
	var hits atomic.Int64
	target := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"status":"SUCCESS"}`))
	})
	local := httptest.NewServer(target) // on 127.0.0.1
	t.Cleanup(local.Close)
	_, port, _ := net.SplitHostPort(local.Listener.Addr().String())
	ctx := context.Background()
	fast := &store.Policy{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond, Limit: 2}
	run := func(c *coordinator.Coordinator, id, u string) {
		t.Helper()
		if _, err := c.Begin(ctx, coordinator.BeginRequest{ID: id, Branches: []store.Branch{urlBranch("b", u)}, Policy: fast}); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if _, err := c.Commit(ctx, id, 0); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		tx := eventually(t, c, id, func(tx *store.Txn) bool { return tx.State == store.Stuck })
		if msg := tx.Branches[0].LastError; !strings.Contains(msg, "participants may not use") {
			t.Errorf("%s: last error %q does not say the address is denied", id, msg)
		}
	}

	// A name (localhost): only its resolved addresses show it is denied.
	// HTTP and gRPC actions go through the same dialer.
	byName, _ := start(t, sqliteStore(t), func(o *coordinator.Options) {
		o.DenyNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	})
	run(byName, "by-name", "http://localhost:"+port+"/confirm")
	run(byName, "grpc-by-name", "grpc://localhost:"+port+"/pkg.Svc/Confirm")

	// An allowed participant that redirects into a denied network (all of
	// 127/8 is loopback on Linux: the hidden one listens on 127.0.0.2).
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.2: %v", err)
	}
	hidden := &httptest.Server{Listener: l, Config: &http.Server{Handler: target}}
	hidden.Start()
	t.Cleanup(hidden.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, hidden.URL+"/confirm", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	redirected, _ := start(t, sqliteStore(t), func(o *coordinator.Options) {
		o.DenyNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	})
	run(redirected, "redirect", redirector.URL+"/confirm")
	// The literal address is refused at once.
	if _, err := redirected.Begin(ctx, coordinator.BeginRequest{Branches: []store.Branch{urlBranch("b", hidden.URL+"/confirm")}}); !errors.Is(err, coordinator.ErrBadInput) {
		t.Fatalf("literal denied address: %v", err)
	}

	if n := hits.Load(); n != 0 {
		t.Fatalf("a participant in a denied network was called %d times", n)
	}
	// The same participant, allowed, is called: the test's setup works.
	allowed, _ := start(t, sqliteStore(t), nil)
	if _, err := allowed.Begin(ctx, coordinator.BeginRequest{ID: "ok", Branches: []store.Branch{urlBranch("b", redirector.URL+"/confirm")}}); err != nil {
		t.Fatal(err)
	}
	if tx, err := allowed.Commit(ctx, "ok", 30*time.Second); err != nil || tx.State != store.Committed || hits.Load() != 1 {
		t.Fatalf("allowed: %v %+v, %d calls", err, tx, hits.Load())
	}
}
