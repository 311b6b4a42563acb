package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestStatusTableIsSafeForTerminals(t *testing.T) {
	body := `{"config":{"accepted":1,"rejected":0,"errors":[]},"xds":{"nodes":[{"id":"evil\u001b[2J\u001b[Hnode\nfake-row","kind":"proxyless","connectedSince":"2026-01-01T00:00:00Z",
	"types":{"type.googleapis.com/envoy.config.listener.v3.Listener":{"sentVersion":"1","ackedVersion":"1","lastNack":{"version":"2","message":"bad\u001b[31m red\u202e"}}}}]}}`
	var out bytes.Buffer
	if err := printStatus(&out, []byte(body)); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.ContainsRune(s, 0x1b) || strings.ContainsRune(s, 0x202e) {
		t.Fatalf("escape sequences reached the terminal: %q", s)
	}
	if strings.Count(s, "\n") != 3 { // config line, header, one node row
		t.Fatalf("a newline in a node id forged a row:\n%s", s)
	}
	if !strings.Contains(s, `evil\u001b[2J`) {
		t.Fatalf("control characters should be shown escaped:\n%s", s)
	}
}

func TestStatusWithNoProxies(t *testing.T) {
	rejected := `"errors":[{"source":{"file":"a.yaml:3","kind":"VirtualService","namespace":"default","name":"r"},"field":"spec.hosts","message":"required"}]`
	for _, tc := range []struct{ body, want string }{
		// The counts are since start: the line says what holds now.
		{`{"config":{"accepted":2,"rejected":1,` + rejected + `},"xds":{"ready":true,"nodes":[]}}`,
			"config: 2 accepted, 1 rejected since start; the last change was REJECTED; the last good configuration is served\n  REJECTED a.yaml:3: VirtualService default/r: spec.hosts: required\nno proxies connected\n"},
		{`{"config":{"accepted":22,"rejected":14,"errors":[]},"xds":{"ready":true,"nodes":[]}}`,
			"config: 22 accepted, 14 rejected since start; the last change was accepted\nno proxies connected\n"},
		{`{"config":{"accepted":0,"rejected":1,` + rejected + `},"xds":{"ready":false,"nodes":[]}}`,
			"config: 0 accepted, 1 rejected since start; NO good configuration yet: proxies get no answer\n  REJECTED a.yaml:3: VirtualService default/r: spec.hosts: required\nno proxies connected\n"},
	} {
		var out bytes.Buffer
		if err := printStatus(&out, []byte(tc.body)); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("got:\n%s\nwant:\n%s", out.String(), tc.want)
		}
	}
}

func TestDialAddr(t *testing.T) {
	for in, want := range map[string]string{
		":8080": "127.0.0.1:8080", "http://127.0.0.1:28080/": "127.0.0.1:28080", "0.0.0.0:15010": "127.0.0.1:15010", "h:1": "h:1",
	} {
		if got := dialAddr(in); got != want {
			t.Errorf("dialAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPrintableKeepsAConfigErrorWhole: a config error (file:line, resource,
// field, message) is a few hundred characters and is printed whole; only
// values longer than 1,000 characters are cut.
func TestPrintableKeepsAConfigErrorWhole(t *testing.T) {
	msg := "examples/bookinfo/virtual-services.yaml:23: VirtualService default/reviews: spec.http[0].route[0].destination.host: " +
		"unknown host \"reviewz\" (resolved as reviewz.default.svc.cluster.local): no Service or ServiceEntry defines it, and no Kubernetes cluster is watched"
	if got := printable(msg); got != msg {
		t.Fatalf("cut: %q", got)
	}
	long := strings.Repeat("x", 1500)
	if got := printable(long); len([]rune(got)) != 1001 || !strings.HasSuffix(got, "…") {
		t.Fatalf("a 1,500-character value printed as %d runes", len([]rune(got)))
	}
}
