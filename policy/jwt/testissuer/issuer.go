// Package testissuer is a small but real OpenID Connect issuer for tests and
// benchmarks: it serves a discovery document and a JWKS over HTTP on
// 127.0.0.1 and signs tokens with RSA keys it can rotate. It is built on
// go-jose rather than a full OP (zitadel/oidc) because verification only
// needs discovery + JWKS, and a test must be able to rotate keys mid-run.
package testissuer

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is a running OIDC issuer.
type Issuer struct {
	srv *httptest.Server
	mu  sync.Mutex
	// keys served in the JWKS; the last one signs.
	keys []*rsa.PrivateKey
	kids []string
	seq  int
	// JWKSFetches counts JWKS requests (rotation tests).
	JWKSFetches atomic.Int64
	// Broken makes the JWKS endpoint answer garbage (true) while set.
	Broken atomic.Bool
}

// Start runs an issuer with one signing key.
func Start() (*Issuer, error) {
	is := &Issuer{}
	if err := is.Rotate(false); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", is.discovery)
	mux.HandleFunc("/jwks", is.jwks)
	is.srv = httptest.NewServer(mux)
	return is, nil
}

// URL is the issuer (iss) URL.
func (is *Issuer) URL() string { return is.srv.URL }

// JWKSURL is the key set URL.
func (is *Issuer) JWKSURL() string { return is.srv.URL + "/jwks" }

// Close stops the server.
func (is *Issuer) Close() { is.srv.Close() }

// Rotate adds a new signing key; with retireOld the previous keys leave the JWKS.
func (is *Issuer) Rotate(retireOld bool) error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("testissuer: %w", err)
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	is.seq++
	if retireOld {
		is.keys, is.kids = nil, nil
	}
	is.keys = append(is.keys, k)
	is.kids = append(is.kids, fmt.Sprintf("key-%d", is.seq))
	return nil
}

func (is *Issuer) discovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer": is.URL(), "jwks_uri": is.JWKSURL(),
		"authorization_endpoint": is.URL() + "/authorize", "token_endpoint": is.URL() + "/token",
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
	})
}

func (is *Issuer) jwks(w http.ResponseWriter, _ *http.Request) {
	is.JWKSFetches.Add(1)
	if is.Broken.Load() {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys": [{"kty": "RSA", "n": "!!", "e": 3}`))
		return
	}
	is.mu.Lock()
	set := jose.JSONWebKeySet{}
	for i, k := range is.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: is.kids[i], Algorithm: "RS256", Use: "sig"})
	}
	is.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

// Claims are the standard claims of a token to issue (zero values are
// filled: iss = the issuer, exp = now+1h, iat = now).
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	Expiry    time.Time
	NotBefore time.Time
	Extra     map[string]any
}

// Token signs claims with the current key.
func (is *Issuer) Token(c Claims) (string, error) {
	is.mu.Lock()
	key, kid := is.keys[len(is.keys)-1], is.kids[len(is.kids)-1]
	is.mu.Unlock()
	return SignWith(key, kid, is.URL(), c)
}

// SignWith signs claims with any RSA key (forged tokens in tests).
func SignWith(key *rsa.PrivateKey, kid, issuer string, c Claims) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return "", fmt.Errorf("testissuer: %w", err)
	}
	now := time.Now()
	if c.Issuer == "" {
		c.Issuer = issuer
	}
	if c.Expiry.IsZero() {
		c.Expiry = now.Add(time.Hour)
	}
	std := josejwt.Claims{
		Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience,
		Expiry: josejwt.NewNumericDate(c.Expiry), IssuedAt: josejwt.NewNumericDate(now),
	}
	if !c.NotBefore.IsZero() {
		std.NotBefore = josejwt.NewNumericDate(c.NotBefore)
	}
	b := josejwt.Signed(signer).Claims(std)
	if c.Extra != nil {
		b = b.Claims(c.Extra)
	}
	tok, err := b.Serialize()
	if err != nil {
		return "", fmt.Errorf("testissuer: %w", err)
	}
	return tok, nil
}
