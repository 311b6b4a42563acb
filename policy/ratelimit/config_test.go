package ratelimit

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRejects(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown key", "domain: d\ndescriptors:\n  - key: a\n    rate_limt: {unit: second, requests_per_unit: 1}\n", `unknown field "rate_limt"`},
		{"unknown nested key", "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1, burst: 3}\n", `unknown field "burst"`},
		{"duplicate descriptor", "domain: d\ndescriptors:\n  - key: a\n    value: x\n  - key: a\n    value: x\n", "duplicate descriptor key \"a\" value \"x\""},
		{"duplicate nested", "domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: b\n      - key: b\n", "descriptors[0].descriptors[1]: duplicate"},
		{"duplicate yaml key", "domain: d\ndomain: e\n", "domain"},
		{"unknown unit", "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: fortnight, requests_per_unit: 1}\n", `unknown unit "fortnight"`},
		{"no domain", "descriptors: []\n", "domain: required"},
		{"no key", "domain: d\ndescriptors:\n  - value: x\n", "key: required"},
		{"replaces without name", "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1, replaces: [{}]}\n", "replaces[0].name: required"},
		{"not yaml", "domain: [\n", "shop.yaml"},
		{"wrong type", "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: -1}\n", "requests_per_unit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseDomain("shop.yaml", []byte(c.yaml))
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}

func TestDuplicateDomain(t *testing.T) {
	a, _ := ParseDomain("a.yaml", []byte("domain: d\n"))
	b, _ := ParseDomain("b.yaml", []byte("domain: d\n"))
	if _, err := NewConfig(a, b); err == nil || !strings.Contains(err.Error(), "already defined in a.yaml") {
		t.Fatalf("err %v", err)
	}
}

func TestMatch(t *testing.T) {
	c, err := LoadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		entries []Entry
		want    string // limit path, "" for none
	}{
		{[]Entry{{"remote_address", "10.0.0.1"}}, "remote_address"},
		{[]Entry{{"path", "/api/cheap"}}, "path=/api/cheap"},
		{[]Entry{{"path", "/api/users"}}, "path=/api/*"},
		{[]Entry{{"path", "/web"}}, ""},
		{[]Entry{{"user", "alice"}, {"plan", "free"}}, "user.plan=free"},
		{[]Entry{{"user", "alice"}}, ""}, // node without a limit
		{[]Entry{{"user", "alice"}, {"plan", "free"}, {"extra", "x"}}, ""},
		{[]Entry{{"nope", "x"}}, ""},
	}
	for _, tc := range cases {
		l := c.domains["shop"].match(tc.entries)
		got := ""
		if l != nil {
			got = l.path
		}
		if got != tc.want {
			t.Errorf("%v: %q, want %q", tc.entries, got, tc.want)
		}
	}
	// replaces: gold replaces global when both match.
	ls := c.limits("shop", [][]Entry{{{"user", "bob"}, {"plan", "gold"}}, {{"global", "x"}}})
	if ls[0] == nil || ls[1] != nil {
		t.Fatalf("replaces not applied: %v %v", ls[0], ls[1])
	}
}

func TestKeysDoNotCollide(t *testing.T) {
	a := counterKey("p|", "d", []Entry{{"a_b", "c"}}, "minute", 60)
	b := counterKey("p|", "d", []Entry{{"a", "b_c"}}, "minute", 60)
	c := counterKey("p|", "d", []Entry{{"a", "b"}, {"c", ""}}, "minute", 60)
	d := counterKey("p|", "d_a", []Entry{{"b", "c"}}, "minute", 60)
	seen := map[string]bool{}
	for _, k := range []string{a, b, c, d} {
		if seen[k] {
			t.Fatalf("collision: %q", k)
		}
		seen[k] = true
	}
}
