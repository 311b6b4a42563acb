package event

import (
	"encoding/json"
	"errors"
	"fmt"
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

// The decoder is strict where a lenient parser would let junk through, and
// shapes values exactly as encoding/json with UseNumber does.
func TestDecodeStrictAndExact(t *testing.T) {
	for name, in := range map[string]string{
		"NaN":            `{"type":"x","payload":{"a":NaN}}`,
		"Inf":            `{"type":"x","payload":{"a":-Inf}}`,
		"leading zero":   `{"type":"x","payload":{"a":01}}`,
		"bad escape":     `{"type":"x","payload":{"a":"\x"}}`,
		"control char":   "{\"type\":\"x\",\"payload\":{\"a\":\"\x01\"}}",
		"type number":    `{"type":5,"payload":{}}`,
		"time not RFC":   `{"type":"x","time":"yesterday","payload":{}}`,
		"envelope array": `[{"type":"x","payload":{}}]`,
	} {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	ev, err := Decode([]byte("{\"Type\":\"x\",\"key\":12345678901234567890,\"time\":\"2026-12-03T10:00:00.5Z\",\"payload\":{\"s\":\"a\\u00e9\\n\\ud83d\\ude80\",\"bad\":\"\xff\",\"d\":-1.50e+3,\"l\":[1,\"2\",null,true,{\"z\":0.1}],\"dup\":1,\"dup\":2}}"))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "x" || ev.Key != "12345678901234567890" || ev.Time.Format("15:04:05.0") != "10:00:00.5" {
		t.Fatalf("envelope = %+v", ev)
	}
	want := map[string]any{"s": "aé\n🚀", "bad": "\uFFFD", "d": json.Number("-1.50e+3"),
		"l": []any{json.Number("1"), "2", nil, true, map[string]any{"z": json.Number("0.1")}}, "dup": json.Number("2")}
	got, _ := json.Marshal(ev.Payload)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("payload = %s, want %s", got, exp)
	}
	if _, ok := ev.Payload["d"].(json.Number); !ok {
		t.Fatalf("number decoded as %T", ev.Payload["d"])
	}
}

// One Decoder decodes many events into shared buffers: every event keeps its
// own values, across buffer refills and with escapes, numbers and unicode.
func TestDecoderKeepsEveryEventIntact(t *testing.T) {
	var d Decoder
	var evs []*Event
	var want []string
	for i := range 3000 {
		name := strings.Repeat("x", i%97) + "é\n" + string(rune('A'+i%26))
		if i%500 == 7 {
			name = strings.Repeat("big", 30_000) // larger than a buffer
		}
		n := json.Number("9007199254740993" + strings.Repeat("1", i%3))
		in, _ := json.Marshal(map[string]any{"type": "t" + string(rune('a'+i%3)), "key": i, "id": fmt.Sprint("e", i),
			"payload": map[string]any{"name": name, "n": n, "ok": i%2 == 0, "nested": map[string]any{"k": []any{n, name}}}})
		ev, err := d.Decode(in)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
		out, _ := json.Marshal(ev)
		want = append(want, string(out))
		if i > 0 && evs[i-1].Key == ev.Key {
			t.Fatal("keys shared between events")
		}
	}
	for i, ev := range evs {
		out, _ := json.Marshal(ev)
		if string(out) != want[i] {
			t.Fatalf("event %d changed after later decodes:\n%s\nwas\n%s", i, out, want[i])
		}
		if ev.Payload["ok"] != (i%2 == 0) || ev.Type != "t"+string(rune('a'+i%3)) {
			t.Fatalf("event %d = %+v", i, ev)
		}
	}
}
