package rest_test

import (
	"strings"
	"testing"
)

// A gRPC endpoint registers like an HTTP one; a malformed one is a 400 that
// says what is wrong.
func TestRegisterGRPCEndpoint(t *testing.T) {
	srv, _, _ := setup(t)
	base := srv.URL + "/api/txn/transactions"
	if code, v, _ := do(t, "POST", base, `{"id":"g-1"}`); code != 201 {
		t.Fatalf("begin %d %v", code, v)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"branch_id":"a","confirm":"grpc://127.0.0.1/bank.Ledger/Confirm"}`, "host:port required"},
		{`{"branch_id":"a","confirm":"grpc://127.0.0.1:9/Confirm"}`, "path must be /package.Service/Method"},
		{`{"branch_id":"a","confirm":"grpcx://127.0.0.1:9/bank.Ledger/Confirm"}`, "scheme must be grpc"},
		{`{"branch_id":"a","confirm":"grpc://127.0.0.1:9/bank.Ledger/Confirm","payload":"text"}`, "JSON object"},
	} {
		code, v, _ := do(t, "POST", base+"/g-1/branches", tc.body)
		if msg, _ := v["error"].(string); code != 400 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %v, want 400 %q", tc.body, code, v, tc.want)
		}
	}
	code, v, _ := do(t, "POST", base+"/g-1/branches",
		`{"branch_id":"a","confirm":"grpc://127.0.0.1:9/bank.Ledger/Confirm","cancel":"grpc://127.0.0.1:9/bank.Ledger/Cancel","payload":{"amount":3}}`)
	if code != 201 {
		t.Fatalf("register %d %v", code, v)
	}
}
