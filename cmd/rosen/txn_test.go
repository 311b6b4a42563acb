package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/txn/store"
)

// --txn-deny-nets: a bad CIDR stops the start with the flag named; "" and
// the default parse.
func TestTxnDenyNetsFlag(t *testing.T) {
	meta := store.Branch{ID: "b", Confirm: store.Action{URL: "http://169.254.169.254/latest/meta-data/"}}
	ten := store.Branch{ID: "b", Confirm: store.Action{URL: "http://10.1.1.1/confirm"}}
	for _, tc := range []struct {
		args        []string
		err         string
		meta, tenOK bool // whether the branch is accepted
	}{
		{nil, "", false, true},
		{[]string{`--txn-deny-nets=`}, "", true, true},
		{[]string{"--txn-deny-nets", "10.0.0.0/8, 169.254.0.0/16"}, "", false, false},
		{[]string{"--txn-deny-nets", "169.254.0.0/33"}, `--txn-deny-nets "169.254.0.0/33"`, false, false},
		{[]string{"--txn-deny-nets", "metadata"}, `--txn-deny-nets "metadata"`, false, false},
	} {
		f := &txnFlags{}
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		f.add(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		c, st, _, err := f.start(context.Background(), zap.NewNop(), prometheus.NewRegistry(), t.TempDir())
		if tc.err == "" {
			if err != nil {
				t.Fatalf("%v: %v", tc.args, err)
			}
			if ok := c.CheckBranch(meta) == nil; ok != tc.meta {
				t.Errorf("%v: metadata URL accepted %v", tc.args, ok)
			}
			if ok := c.CheckBranch(ten) == nil; ok != tc.tenOK {
				t.Errorf("%v: 10.1.1.1 accepted %v", tc.args, ok)
			}
			c.Close()
			_ = st.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Fatalf("%v: %v, want %q", tc.args, err, tc.err)
		}
	}
}

// txn list/show find the coordinator as status does (--http-addr,
// ROSEN_HTTP_ADDR) or by --server, a URL or host:port; a fresh-user trial
// got "first path segment in URL cannot contain colon" from
// --server 127.0.0.1:18480 and "unknown flag" from --http-addr.
func TestTxnListAddresses(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/api/txn/transactions" && r.URL.Path != "/api/txn/transactions/t1" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"transactions":[{"id":"t1","state":"committed"}],"id":"t1"}`))
	}))
	defer srv.Close()
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	run := func(env string, args ...string) (string, error) {
		t.Setenv("ROSEN_HTTP_ADDR", env)
		cmd := newTxnListCommand()
		if len(args) > 0 && args[0] == "show" {
			cmd, args = newTxnShowCommand(), args[1:]
		}
		var out strings.Builder
		cmd.SetOut(&out)
		cmd.SetArgs(args)
		err := cmd.Execute()
		return out.String(), err
	}
	for _, tc := range []struct {
		env  string
		args []string
	}{
		{"", []string{"--http-addr", hostPort}},
		{hostPort, []string{}},
		{"", []string{"--server", hostPort}},
		{"", []string{"--server", srv.URL + "/"}},
		{"", []string{"show", "--http-addr", hostPort, "t1"}},
	} {
		before := hits.Load()
		out, err := run(tc.env, tc.args...)
		if err != nil || !strings.Contains(out, "t1") || hits.Load() != before+1 {
			t.Errorf("env %q args %v: %v %q", tc.env, tc.args, err, out)
		}
	}
}
