package wire

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rosenmesh/rosen/txn/store"
)

// AppendView must write what json.Marshal(View(t)) writes, byte for byte.
func TestAppendViewMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 12, 3, 19, 4, 5, 123456789, time.UTC)
	local := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	cases := map[string]*store.Txn{
		"empty": {},
		"new": {ID: "a1", State: store.Trying, Policy: store.Policy{Initial: 200 * time.Millisecond, Max: time.Minute, Limit: 10},
			Headers: map[string]string{}, CreatedAt: now, UpdatedAt: now, Deadline: now.Add(time.Minute), NextDue: now.Add(time.Minute), Branches: []store.Branch{}},
		"full": {ID: "order-<1>&", State: store.Stuck, StuckPhase: store.Confirming, Reason: "tab\there \"quoted\" \\ é \u2028 \x01 \xff",
			Policy:    store.Policy{Initial: 1500 * time.Microsecond, Max: 90 * time.Second, Limit: 3},
			Headers:   map[string]string{"X-B": "2", "X-A": "<1>", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
			CreatedAt: local, UpdatedAt: now, Deadline: now, FinishedAt: now, NextDue: time.Time{}, Owner: "host-1-ab", Attempts: 7, LastError: "b1: participant answered 500: <html>",
			Branches: []store.Branch{
				{ID: "b0", State: store.BranchConfirmed, Confirm: store.Action{URL: "http://127.0.0.1:1/c?a=1&b=2", Body: []byte(`{"amount":1}`)},
					Cancel: store.Action{URL: "http://127.0.0.1:1/k", Method: "DELETE", Body: []byte("{ \"a\" : [1, 2],\n \"h\": \"<b>\" }")}, Attempts: 1, UpdatedAt: now},
				{ID: "b1", State: store.BranchRegistered, Confirm: store.Action{URL: "grpc://h:1/p.S/M", Body: []byte("not json \u2028")},
					Cancel: store.Action{}, Attempts: 0, LastError: "x", UpdatedAt: time.Time{}},
				{ID: "b2", Confirm: store.Action{Body: []byte(`"\u2028 ok"`)}, Cancel: store.Action{Body: []byte("\xff")}},
			}},
	}
	for name, txn := range cases {
		want, err := json.Marshal(View(txn))
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendView(nil, txn); string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

// DecodeBranch reads what json.Unmarshal reads, or declines.
func TestDecodeBranchIsEncodingJSON(t *testing.T) {
	bodies := []string{
		`{"branch_id":"b0","confirm":"http://127.0.0.1:1/c","cancel":"http://127.0.0.1:1/k","payload":{"amount":1}}`,
		`{"branch_id":"b0","confirm":"http://h/c","method":"PUT","payload":"a b"}`,
		`{"cancel":"http://h/k","branch_id":"b1"}`,
		`{"branch_id":"b0","payload":null}`,
		`{"branch_id":"b0","payload":[1, {"x":"y z"}]}`,
		`{}`,
		`{"branch_id":"b0","branch_id":"b1"}`,
		// declined (encoding/json decides): spaces, escapes, other keys, bad JSON
		`{ "branch_id":"b0"}`, `{"branch_id":"b\u0030"}`, `{"branch_id":"é"}`, `{"branch_id":"b0","extra":1}`,
		`{"branch_id":"b0",}`, `{"branch_id":"b0","payload": {"a":1}}`, `{"branch_id":"b0","payload":{"a":1},"method":"PUT"}`,
		`{"branch_id":"b0","payload":{"a":}`, `{"branch_id":null}`, `{"branch_id":"b0"`, `[]`, ``, `{"branch_id":"b0","payload":}`,
	}
	for _, raw := range bodies {
		var want Branch
		werr := json.Unmarshal([]byte(raw), &want)
		var got Branch
		if !DecodeBranch([]byte(raw), &got) {
			continue // the caller decodes it with encoding/json
		}
		if werr != nil {
			t.Errorf("DecodeBranch accepted %s, encoding/json says %v", raw, werr)
			continue
		}
		if got.ID != want.ID || got.Confirm != want.Confirm || got.Cancel != want.Cancel || got.Method != want.Method || string(got.Payload) != string(want.Payload) {
			t.Errorf("DecodeBranch(%s) = %+v, encoding/json %+v", raw, got, want)
		}
	}
	for _, raw := range bodies[:7] {
		var b Branch
		if !DecodeBranch([]byte(raw), &b) {
			t.Errorf("DecodeBranch declined %s", raw)
		}
	}
}
