package main

import (
	"context"
	"strings"
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
