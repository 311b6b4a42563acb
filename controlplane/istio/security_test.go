package istio

import (
	"strings"
	"testing"

	"github.com/rosenmesh/rosen/controlplane/model"
)

func requestAuthn(rule string) string {
	return `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt}
spec:
  jwtRules:
  - ` + rule + "\n"
}

func TestRequestAuthenticationErrors(t *testing.T) {
	const at = `t.yaml:1: RequestAuthentication default/jwt: spec.jwtRules[0]`
	cases := []struct {
		name, doc string
		want      []string
	}{
		{"no jwksUri", requestAuthn(`{issuer: https://a.example.com}`),
			[]string{at + `.jwksUri: required: Rosen's gateways fetch keys from jwksUri (OIDC discovery is not resolved for them)`}},
		{"not http", requestAuthn(`{issuer: a, jwksUri: "file:///etc/keys.json"}`),
			[]string{at + `.jwksUri: scheme "file": only https and http are fetched`}},
		{"relative", requestAuthn(`{issuer: a, jwksUri: "/keys"}`),
			[]string{at + `.jwksUri: scheme "": only https and http are fetched`}},
		{"no host", requestAuthn(`{issuer: a, jwksUri: "https:///keys"}`),
			[]string{at + `.jwksUri: no host in "https:///keys"`}},
		{"bad port", requestAuthn(`{issuer: a, jwksUri: "https://a.example.com:0/keys"}`),
			[]string{at + `.jwksUri: port "0" is not 1-65535`}},
		{"inline jwks and tiny timeout", requestAuthn(`{issuer: a, jwks: "{}", jwksUri: "https://a/k", timeout: 0.0001s}`),
			[]string{at + `.jwks: inline jwks is not supported; use jwksUri`, at + `.timeout: duration 100µs must be at least 1ms`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := build(t, c.doc)
			var got []string
			for _, fe := range model.AsFieldErrors(err) {
				got = append(got, fe.Error())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
	m, err := build(t, requestAuthn(`{issuer: a, jwksUri: "http://keys.internal:8080/jwks", timeout: 2s}`))
	if err != nil || len(m.Security.RequestAuthentications) != 1 {
		t.Fatalf("valid RequestAuthentication: %v", err)
	}
}
