package istio

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bookinfo.example.com"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4e9, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}

func TestGatewaySecret(t *testing.T) {
	cert, key := selfSigned(t)
	gw := `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [bookinfo.example.com]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert, minProtocolVersion: TLSV1_2}
---
apiVersion: v1
kind: Secret
metadata: {name: bookinfo-cert, namespace: istio-system}
type: kubernetes.io/tls
stringData:
  tls.crt: |
` + indent(cert) + `
  tls.key: |
` + indent(key) + "\n"
	m, err := build(t, gw)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Secrets) != 1 || m.Secrets[0].Name != "bookinfo-cert" || !strings.Contains(string(m.Secrets[0].PrivateKey), "EC PRIVATE KEY") {
		t.Fatalf("secrets = %+v", m.Secrets)
	}
	tls := m.Gateways[0].Servers[0].TLS
	if tls == nil || tls.Mode != "SIMPLE" || tls.CredentialName != "bookinfo-cert" || tls.MinProtocolVersion != "TLSV1_2" {
		t.Errorf("tls = %+v", tls)
	}
	// A key that does not match the certificate is rejected.
	_, otherKey := selfSigned(t)
	_, err = build(t, strings.Replace(gw, indent(key), indent(otherKey), 1))
	if err == nil || !strings.Contains(err.Error(), "Secret istio-system/bookinfo-cert: data: invalid tls.crt/tls.key pair") {
		t.Errorf("mismatched key: %v", err)
	}
}
