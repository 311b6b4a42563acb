package jsontext

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAppendStringIsEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quote"`, `back\slash`, "tab\t", "<html>&", "é", "\u2028", "\xff"} {
		want, _ := json.Marshal(s)
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("%q: %s, want x%s", s, got, want)
		}
	}
}

func TestPlainString(t *testing.T) {
	s, rest, ok := PlainString([]byte(`"abc",1`))
	if !ok || s != "abc" || string(rest) != ",1" {
		t.Fatalf("plain: %q %q %v", s, rest, ok)
	}
	// Anything encoding/json would change or reject is left to it.
	for _, in := range []string{`"a\"b"`, "\"tab\t\"", `"é"`, `"open`, `abc`, ``} {
		if _, _, ok := PlainString([]byte(in)); ok {
			t.Errorf("%q read as plain", in)
		}
	}
}

func TestDepth(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{``, 0}, {`1`, 0}, {`"[[["`, 0}, {`{}`, 1}, {`[[],[[]]]`, 3},
		{`{"a":"\"[{","b":[{"c":"\\"}]}`, 3}, {`["\\\"]["]`, 1},
		{strings.Repeat("[", 1001) + strings.Repeat("]", 1001), 1001},
	} {
		if got := Depth([]byte(c.in)); got != c.want {
			t.Errorf("Depth(%.40q) = %d, want %d", c.in, got, c.want)
		}
	}
}
