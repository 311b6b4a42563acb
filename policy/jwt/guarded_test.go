package jwt

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/rosenmesh/rosen/policy/jwt/testissuer"
)

// TestGuardedSetSkipsNonSigningKeys: go-oidc ignores a JWKS key whose alg is
// not a signature algorithm it supports (here RSA-OAEP, an encryption key
// published without "use"); guardedSet, which answers for kids of the last
// fetched JWKS without go-oidc, verified tokens with it. A token signed with
// such a key must be refused by both.
func TestGuardedSetSkipsNonSigningKeys(t *testing.T) {
	const iss = "https://issuer.example"
	sig, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &sig.PublicKey, KeyID: "sig", Algorithm: "RS256", Use: "sig"},
		{Key: &enc.PublicKey, KeyID: "enc", Algorithm: "RSA-OAEP"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	good, _ := testissuer.SignWith(sig, "sig", iss, testissuer.Claims{Subject: "a"})
	bad, _ := testissuer.SignWith(enc, "enc", iss, testissuer.Claims{Subject: "evil"})
	ctx := context.Background()

	plain := oidc.NewVerifier(iss, oidc.NewRemoteKeySet(ctx, srv.URL), &oidc.Config{SkipClientIDCheck: true, SkipExpiryCheck: true, SupportedSigningAlgs: signingAlgs})
	if _, err := plain.Verify(ctx, bad); err == nil {
		t.Fatal("go-oidc itself accepts the token: the test no longer shows a difference")
	}
	v, _ := New([]Provider{{Issuer: iss, JWKSURI: srv.URL}}, Options{})
	if _, err := v.VerifyToken(ctx, good); err != nil { // fetches the JWKS: guardedSet now answers for its kids
		t.Fatal(err)
	}
	if _, err := v.VerifyToken(ctx, bad); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token signed with an RSA-OAEP key: %v", err)
	}
}

// TestKeyRotatedUnderSameKid: guardedSet answered every token whose kid was
// in the last JWKS from that JWKS and never fetched again, so an issuer that
// replaced the key behind a kid had its new tokens refused for ever (go-oidc
// alone fetches and accepts them). They are now accepted once the last
// fetch is RefetchCooldown old, and forged tokens with that kid still cost
// at most one fetch per cooldown.
func TestKeyRotatedUnderSameKid(t *testing.T) {
	const iss = "https://issuer.example"
	k1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	cur := k1
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		mu.Lock()
		b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &cur.PublicKey, KeyID: "k", Algorithm: "RS256", Use: "sig"}}})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	v, _ := New([]Provider{{Issuer: iss, JWKSURI: srv.URL}}, Options{Now: clock, CacheSize: -1})
	ctx := context.Background()
	t1, _ := testissuer.SignWith(k1, "k", iss, testissuer.Claims{Subject: "a"})
	if _, err := v.VerifyToken(ctx, t1); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	cur = k2
	mu.Unlock()
	t2, _ := testissuer.SignWith(k2, "k", iss, testissuer.Claims{Subject: "b"})
	now.Add(int64(RefetchCooldown + time.Second))
	if _, err := v.VerifyToken(ctx, t2); err != nil {
		t.Fatalf("token signed with the key now under kid k: %v", err)
	}
	if _, err := v.VerifyToken(ctx, t1); err == nil {
		t.Fatal("token signed with the replaced key accepted")
	}
	now.Add(int64(RefetchCooldown + time.Second))
	before := fetches.Load()
	parts := strings.Split(t2, ".")
	for i := range 20 {
		forged := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte{byte(i), 1, 2, 3})
		if _, err := v.VerifyToken(ctx, forged); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("forged: %v", err)
		}
	}
	if n := fetches.Load() - before; n > 1 {
		t.Fatalf("20 forged tokens with a known kid fetched the JWKS %d times, want at most 1", n)
	}
}
