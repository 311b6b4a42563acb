package rest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rosenmesh/rosen/txn/wire"
)

// The handlers write their answers by hand (wire.AppendView): the bytes must
// be what echo's JSON (encoding/json) wrote, and ?pretty still indents.
func TestAnswersAreEncodingJSON(t *testing.T) {
	srv, part, _ := setup(t)
	base := srv.URL + "/api/txn/transactions"
	raw := func(method, url, ctype, body string) (int, []byte) {
		t.Helper()
		return call(t, method, url, ctype, strings.NewReader(body))
	}
	code, b := raw("POST", base, "application/json; charset=utf-8", `{"id":"a1","headers":{"X-T":"<&>"},"branches":[{"branch_id":"b0","confirm":"`+part+`/c","payload":{ "n" : 1 }}]}`)
	if code != 201 {
		t.Fatalf("begin %d %s", code, b)
	}
	var got wire.TxnView
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "a1" || !bytes.Contains(b, []byte(`"X-T":"\u003c\u0026\u003e"`)) || !bytes.Contains(b, []byte(`"body":{"n":1}`)) || b[len(b)-1] != '\n' {
		t.Fatalf("begin answer %s", b)
	}
	code, b = raw("POST", base+"/a1/branches", "application/json", `{"branch_id":"b1","confirm":"`+part+`/c"}`)
	if code != 201 || string(b) != "{\"branch_id\":\"b1\",\"txn_id\":\"a1\"}\n" {
		t.Fatalf("register %d %q", code, b)
	}
	// Registrations the fast reader declines go through encoding/json; errors stay as they were.
	code, b = raw("POST", base+"/a1/branches", "application/json", "{ \"branch_id\" : \"b2\", \"confirm\": \""+part+"/c\" }")
	if code != 201 || string(b) != "{\"branch_id\":\"b2\",\"txn_id\":\"a1\"}\n" {
		t.Fatalf("register with spaces %d %q", code, b)
	}
	code, b = raw("POST", base+"/a1/branches", "application/json", `{"branch_id":"b3","confirm":`)
	if code != 400 || !bytes.Contains(b, []byte("malformed body")) {
		t.Fatalf("malformed register %d %s", code, b)
	}
	code, b = raw("POST", base+"/a1/branches", "application/json", `{"branch_id":"b3","payload":"`+strings.Repeat("x", 3<<20)+`"}`)
	if code != 413 {
		t.Fatalf("oversized register %d %.80s", code, b)
	}
	code, _ = raw("POST", base+"/a1/branches", "application/json", `{"branch_id":"b0","confirm":"`+part+`/c","payload":{ "n" : 1 }}`) // the payload kept as written: the same registration
	if code != 201 {
		t.Fatalf("same registration again: %d", code)
	}
	// GET answers the same document encoding/json makes of the view.
	code, b = raw("GET", base+"/a1", "", "")
	var v wire.TxnView
	if err := json.Unmarshal(b, &v); err != nil || code != 200 || len(v.Branches) != 3 {
		t.Fatalf("get %d %s", code, b)
	}
	want, _ := json.Marshal(v)
	if string(b) != string(want)+"\n" {
		t.Fatalf("get answer\n got %s\nwant %s", b, want)
	}
	code, b = raw("GET", base+"/a1?pretty", "", "")
	if code != 200 || !bytes.Contains(b, []byte("\n  \"id\": ")) {
		t.Fatalf("pretty %d %s", code, b)
	}
	// Bodies that are not JSON are refused (a form used to bind no field and begin a transaction with a random id).
	code, b = raw("POST", base, "application/x-www-form-urlencoded", "id=f1")
	if code != 415 || !bytes.Contains(b, []byte("the body must be JSON")) {
		t.Fatalf("form begin %d %s", code, b)
	}
	code, b = raw("POST", base, "text/plain", "hello")
	if code != 415 {
		t.Fatalf("text begin %d %s", code, b)
	}
	code, b = raw("POST", base, "application/xml", "<Begin><ID>x1</ID></Begin>")
	if code != 415 {
		t.Fatalf("xml begin %d %s", code, b)
	}
	code, b = raw("POST", base, "application/json", `{"timeout":5x}`)
	if code != 400 || !bytes.Contains(b, []byte("malformed body: Syntax error")) {
		t.Fatalf("syntax error %d %s", code, b)
	}
}

// call sends one request (Content-Type ctype unless empty) and returns the
// status and body of the answer, which must be JSON.
func call(t *testing.T, method, url, ctype string, body io.Reader) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: content type %q", method, url, ct)
	}
	return resp.StatusCode, b
}
