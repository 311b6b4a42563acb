package event

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeKeepsNumbersExact(t *testing.T) {
	ev, err := Decode([]byte(`{"id":"e1","type":"userCreated","key":7,"payload":{"id":9007199254740993,"price":0.1,"ok":false,"name":"日本語","n":null,"order":{"customer":{"id":12345678901234567890}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Key != "7" {
		t.Fatalf("key = %q", ev.Key)
	}
	if got := ev.Payload["id"].(json.Number).String(); got != "9007199254740993" {
		t.Fatalf("id = %s", got)
	}
	if got := ev.Payload["price"].(json.Number).String(); got != "0.1" {
		t.Fatalf("price = %s", got)
	}
	if ev.Payload["ok"] != false {
		t.Fatalf("ok = %v", ev.Payload["ok"])
	}
	v, found := Lookup(ev.Payload, "order.customer.id")
	if !found || v.(json.Number).String() != "12345678901234567890" {
		t.Fatalf("nested = %v %v", v, found)
	}
	if v, found := Lookup(ev.Payload, "n"); !found || v != nil {
		t.Fatalf("null lookup = %v %v", v, found)
	}
	if _, found := Lookup(ev.Payload, "order.missing.id"); found {
		t.Fatal("missing path found")
	}
	out, err := Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "9007199254740993") || !strings.Contains(string(out), "12345678901234567890") {
		t.Fatalf("re-encoded lost digits: %s", out)
	}
}

func TestDecodeBadInput(t *testing.T) {
	cases := map[string]struct {
		in   string
		want error
	}{
		"not json":        {`{"type":`, ErrMalformed},
		"no type":         {`{"payload":{}}`, ErrNoType},
		"payload array":   {`{"type":"x","payload":[1]}`, ErrNoPayload},
		"payload missing": {`{"type":"x"}`, ErrNoPayload},
		"trailing":        {`{"type":"x","payload":{}} {}`, ErrMalformed},
		"gravity name":    {`{"event":"x","payload":{"a":1}}`, nil},
	}
	for name, c := range cases {
		_, err := Decode([]byte(c.in))
		if !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
}
