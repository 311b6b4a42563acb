package rest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// Bodies and requests a careless or hostile client sends (found by a
// breaker run against the hand-written readers): each gets a defined answer
// and leaves nothing half done.
func TestHostileBodies(t *testing.T) {
	srv, part, _ := setup(t)
	base := srv.URL + "/api/txn/transactions"
	send := func(method, url, ctype string, body io.Reader) (int, []byte) {
		t.Helper()
		return call(t, method, url, ctype, body)
	}
	str := func(method, url, ctype, body string) (int, []byte) {
		t.Helper()
		return send(method, url, ctype, strings.NewReader(body))
	}
	// chunked: a reader of unknown length makes net/http send Transfer-Encoding: chunked.
	chunked := func(method, url, body string) (int, []byte) {
		t.Helper()
		return send(method, url, "application/json", io.MultiReader(strings.NewReader(body)))
	}
	get := func(id string) map[string]any {
		t.Helper()
		code, b := str("GET", base+"/"+id, "", "")
		var v map[string]any
		if code != 200 || json.Unmarshal(b, &v) != nil {
			t.Fatalf("get %s: %d %.200s", id, code, b)
		}
		return v
	}

	// Media types are case-insensitive; +json types and a missing Content-Type are JSON.
	for i, ct := range []string{"APPLICATION/JSON", "application/merge-patch+json", "application/json; charset=UTF-8", ""} {
		if code, b := str("POST", base, ct, fmt.Sprintf(`{"id":"ct%d"}`, i)); code != 201 {
			t.Errorf("Content-Type %q: %d %s", ct, code, b)
		}
	}
	// Anything after the JSON value is an error, as json.Unmarshal has it.
	for _, body := range []string{`{"id":"tr1"} garbage`, `{"id":"tr2"}{"id":"tr3"}`} {
		if code, b := str("POST", base, "application/json", body); code != 400 || !bytes.Contains(b, []byte("malformed body")) {
			t.Errorf("%q: %d %s", body, code, b)
		}
	}
	if code, b := str("POST", base+"/ct0/branches", "application/json", `{"branch_id":"b9","confirm":"`+part+`/c"} trailing`); code != 400 {
		t.Errorf("branch with trailing data: %d %s", code, b)
	}
	// null is "not set" for durations, as for every other field.
	if code, b := str("POST", base, "application/json", `{"id":"n1","timeout":null}`); code != 201 {
		t.Errorf("null durations: %d %s", code, b)
	}
	// Header names are case-insensitive: two spellings of one name are refused, not picked at random.
	if code, b := str("POST", base, "application/json", `{"id":"h1","headers":{"X-A":"1","x-a":"2"}}`); code != 400 || !bytes.Contains(b, []byte("given twice")) {
		t.Errorf("duplicate header names: %d %s", code, b)
	}
	// Payload depth is bounded below encoding/json's 10,000 levels, on both readers, so every stored transaction stays readable.
	deep := strings.Repeat("[", 9999) + strings.Repeat("]", 9999)
	for _, body := range []string{
		`{"branch_id":"d1","confirm":"` + part + `/c","payload":` + deep + `}`,   // the fast reader's shape
		`{ "branch_id":"d2","confirm":"` + part + `/c","payload":` + deep + `}`,  // encoding/json's path
		`{"branch_id":"d3","confirm":"` + part + `/c","payload":[` + deep + `]}`, // past encoding/json's own limit
	} {
		if code, b := str("POST", base+"/ct0/branches", "application/json", body); code != 400 {
			t.Errorf("deep payload: %d %.200s", code, b)
		}
	}
	if code, b := str("POST", base+"/ct0/branches", "application/json", `{"branch_id":"d4","confirm":"`+part+`/c","payload":`+strings.Repeat("[", 1000)+strings.Repeat("]", 1000)+`}`); code != 201 {
		t.Errorf("payload 1,000 deep: %d %.200s", code, b)
	}
	if v := get("ct0"); len(v["branches"].([]any)) != 1 {
		t.Errorf("ct0 branches %v", v["branches"])
	}
	// Over the body limit without Content-Length: 413, as with it.
	big := `{"id":"big","headers":{"X-P":"` + strings.Repeat("x", 3<<20) + `"}}`
	if code, b := chunked("POST", base, big); code != 413 {
		t.Errorf("chunked oversized begin: %d %.100s", code, b)
	}
	// A chunked abort keeps its reason.
	if code, b := chunked("POST", base+"/ct1/abort", `{"reason":"my reason"}`); code != 200 && code != 202 {
		t.Fatalf("abort: %d %s", code, b)
	}
	if v := get("ct1"); !strings.Contains(fmt.Sprint(v), "my reason") {
		t.Errorf("chunked abort reason lost: %v", v)
	}
	// ?pretty however it is escaped.
	if code, b := str("GET", base+"/ct0?%70retty", "", ""); code != 200 || !bytes.Contains(b, []byte("\n  \"id\": ")) {
		t.Errorf("escaped pretty: %d %.80s", code, b)
	}
	// Twist: a bad task leaves none of the tasks registered.
	code, b := str("POST", srv.URL+"/api/transactions", "application/json", `{}`)
	var created struct{ TransactionID string }
	if code != 201 || json.Unmarshal(b, &created) != nil {
		t.Fatalf("twist create %d %s", code, b)
	}
	tw := srv.URL + "/api/transactions/" + created.TransactionID
	code, b = str("PUT", tw, "application/json", `{"tasks":[{"id":"ok","confirm":{"url":"`+part+`/c"},"cancel":{"url":"`+part+`/x"}},{"id":"bad!","confirm":{"url":"`+part+`/c"}}]}`)
	if code != 400 || !bytes.Contains(b, []byte("tasks[1]")) {
		t.Errorf("twist bad task: %d %s", code, b)
	}
	if v := get(created.TransactionID); v["branches"] != nil && len(v["branches"].([]any)) != 0 {
		t.Errorf("a refused Twist PUT left branches behind: %v", v["branches"])
	}
	// The native API's documents are Rosen's: an unknown key is an error
	// naming it (a misspelt "timeot" was ignored: the default 60 s applied).
	// Twist's stay lenient (its clients send fields of their own).
	if code, b := str("POST", base, "application/json", `{"id":"u3"}`); code != 201 {
		t.Fatalf("create u3: %d %s", code, b)
	}
	for _, tc := range []struct{ method, url, body, key string }{
		{"POST", base, `{"id":"u1","timeot":"5s"}`, "timeot"},
		{"POST", base, `{"id":"u2","branches":[{"branch_id":"b","confirm":"` + part + `/c","confrim":"x"}]}`, "confrim"},
		{"POST", base + "/ct0/branches", `{"branch_id":"b8","confirm":"` + part + `/c","canel":"` + part + `/x"}`, "canel"},
		{"POST", base + "/u3/abort", `{"reasn":"x"}`, "reasn"},
	} {
		if code, b := str(tc.method, tc.url, "application/json", tc.body); code != 400 || !bytes.Contains(b, []byte(`unknown field \"`+tc.key+`\"`)) {
			t.Errorf("%s %s: %d %s", tc.url, tc.body, code, b)
		}
	}
	if v := get("u3"); v["state"] != "trying" {
		t.Errorf("a refused abort changed the transaction: %v", v["state"])
	}
	if code, b := str("POST", srv.URL+"/api/transactions", "application/json", `{"mode":"tcc","client":"twist-go 1.2"}`); code != 201 {
		t.Errorf("Twist create with an extra field: %d %s", code, b)
	}
	// A participant URL at the cloud metadata address is refused (SSRF), in
	// both APIs, naming the network; the flag --txn-deny-nets sets the list.
	meta := "http://169.254.169.254/latest/meta-data/"
	if code, b := str("POST", base+"/ct0/branches", "application/json", `{"branch_id":"m1","confirm":"`+meta+`"}`); code != 400 || !bytes.Contains(b, []byte("169.254.0.0/16")) {
		t.Errorf("metadata branch: %d %s", code, b)
	}
	if code, b := str("PUT", tw, "application/json", `{"tasks":[{"id":"m2","confirm":{"url":"`+meta+`"}}]}`); code != 400 || !bytes.Contains(b, []byte("169.254.0.0/16")) {
		t.Errorf("twist metadata task: %d %s", code, b)
	}
}

// A body that ends before its Content-Length is the client's fault (400),
// not a store failure (503).
func TestTruncatedBody(t *testing.T) {
	srv, _, _ := setup(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, path := range []string{"/api/txn/transactions", "/api/txn/transactions/x1/branches"} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		body := `{"branch_id":"b0"`
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n%s", path, body)
		_ = conn.(*net.TCPConn).CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s truncated: %d %s", path, resp.StatusCode, b)
		}
	}
}
