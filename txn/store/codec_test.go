package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// The hand-written codecs write what encoding/json writes and read back what
// it reads, fast shape or not.
func TestCodecsAreEncodingJSON(t *testing.T) {
	actions := []Action{
		{},
		{URL: "http://127.0.0.1:8080/confirm"},
		{URL: "http://h/c?a=1&b=<2>", Method: "PUT", Body: []byte(`{"amount":1}`)},
		{URL: "grpc://h:1/p.S/M", Body: []byte{0, 1, 2, 0xff}},
		{URL: "http://h/é\u2028\"\\\x01", Method: "DELETE"},
		{Method: "POST", Body: []byte("x")},
	}
	for _, a := range actions {
		want, _ := json.Marshal(a)
		got := marshalAction(a)
		if string(got) != string(want) {
			t.Errorf("marshalAction(%+v) = %s, want %s", a, got, want)
		}
		var back Action
		if err := unmarshalAction(got, &back); err != nil || !reflect.DeepEqual(normal(back), normal(a)) {
			t.Errorf("unmarshalAction(%s) = %+v, %v", got, back, err)
		}
	}
	// Other shapes encoding/json reads (spaces, order, escapes) are read the same.
	for _, raw := range []string{`{ "url": "http://h/c", "body": "eyJhIjoxfQ==" }`, `{"body":"eyJhIjoxfQ==","url":"http://h/c"}`,
		`{"url":"http:\/\/h\/c","method":"PUT"}`, `{"url":"http://h/c","body":null}`, `{"url":"http://h/c","extra":1}`} {
		var want, got Action
		werr := json.Unmarshal([]byte(raw), &want)
		gerr := unmarshalAction([]byte(raw), &got)
		if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("unmarshalAction(%s) = %+v, %v; encoding/json %+v, %v", raw, got, gerr, want, werr)
		}
	}
	for _, raw := range []string{`{"url":"http://h/c","body":"!!"}`, `{"url":`, `[]`, `{"url":"a"}x`} {
		var a Action
		if err := unmarshalAction([]byte(raw), &a); err == nil {
			t.Errorf("unmarshalAction(%s) accepted: %+v", raw, a)
		}
	}

	policies := []Policy{{}, {Initial: 200 * time.Millisecond, Max: time.Minute, Limit: 10}, {Initial: -1, Max: 1<<62 + 3, Limit: -7}}
	for _, p := range policies {
		want, _ := json.Marshal(p)
		got := marshalPolicy(p)
		var back Policy
		if string(got) != string(want) || unmarshalPolicy(got, &back) != nil || back != p {
			t.Errorf("policy %+v: %s (want %s) read back %+v", p, got, want, back)
		}
	}
	for _, raw := range []string{`{"limit":3,"initial":5,"max":6}`, `{"initial":007,"max":1,"limit":1}`, `{"initial":1,"max":1,"limit":1} `, `{"initial":1.5,"max":1,"limit":1}`, `{"initial":-0,"max":1,"limit":1}`} {
		var want, got Policy
		werr := json.Unmarshal([]byte(raw), &want)
		gerr := unmarshalPolicy([]byte(raw), &got)
		if (werr == nil) != (gerr == nil) || got != want {
			t.Errorf("unmarshalPolicy(%s) = %+v, %v; encoding/json %+v, %v", raw, got, gerr, want, werr)
		}
	}

	for _, h := range []map[string]string{nil, {}, {"X-A": "1", "traceparent": "<x>"}} {
		want, _ := json.Marshal(h)
		got := marshalHeaders(h)
		var back map[string]string
		if string(got) != string(want) || unmarshalHeaders(got, &back) != nil || !reflect.DeepEqual(back, h) {
			t.Errorf("headers %v: %s (want %s) read back %v", h, got, want, back)
		}
	}
}

// normal makes an empty body nil, as encoding/json reads an omitted one.
func normal(a Action) Action {
	if len(a.Body) == 0 {
		a.Body = nil
	}
	return a
}
