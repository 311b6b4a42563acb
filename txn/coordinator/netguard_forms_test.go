package coordinator_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosenmesh/rosen/txn/coordinator"
	"github.com/rosenmesh/rosen/txn/store"
)

// Addresses that reach a denied network without being in it: the NAT64
// form of the metadata address (64:ff9b::a9fe:a9fe, through a NAT64
// gateway), and 0.0.0.0 / ::, which connect to this host's loopback when
// loopback is denied. They were accepted at registration, and 0.0.0.0 and
// :: reached a participant listening on 127.0.0.1.
func TestAddressesThatReachDeniedNets(t *testing.T) {
	ctx := context.Background()
	def, _ := start(t, sqliteStore(t), nil)
	for _, u := range []string{"http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "grpc://[64:ff9b::169.254.169.254]:80/a.B/C"} {
		if err := def.CheckBranch(urlBranch("b", u)); !errors.Is(err, coordinator.ErrBadInput) {
			t.Errorf("%s: %v", u, err)
		}
	}

	var hits atomic.Int64
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"status":"SUCCESS"}`))
	}))
	t.Cleanup(local.Close)
	_, port, _ := net.SplitHostPort(local.Listener.Addr().String())
	noLoopback, _ := start(t, sqliteStore(t), func(o *coordinator.Options) {
		o.DenyNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	})
	fast := &store.Policy{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond, Limit: 2}
	for i, u := range []string{"http://0.0.0.0:" + port + "/c", "http://[::]:" + port + "/c", "grpc://0.0.0.0:" + port + "/a.B/C"} {
		_, err := noLoopback.Begin(ctx, coordinator.BeginRequest{ID: "u" + string(rune('a'+i)), Branches: []store.Branch{urlBranch("b", u)}, Policy: fast})
		if !errors.Is(err, coordinator.ErrBadInput) {
			t.Errorf("%s: %v", u, err)
			if err == nil {
				_, _ = noLoopback.Commit(ctx, "u"+string(rune('a'+i)), 5*time.Second)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("a participant on a denied loopback was called %d times", n)
	}
}
