package jwt

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rosenmesh/rosen/policy/jwt/testissuer"
)

func startIssuer(t *testing.T) *testissuer.Issuer {
	t.Helper()
	is, err := testissuer.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(is.Close)
	return is
}

func token(t *testing.T, is *testissuer.Issuer, c testissuer.Claims) string {
	t.Helper()
	tok, err := is.Token(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func bearer(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }

// TestTokens: each token and the verdict written beside it, against a real
// issuer over HTTP (discovery for one provider, jwksUri for the other).
func TestTokens(t *testing.T) {
	is := startIssuer(t)
	other := startIssuer(t)
	v, err := New([]Provider{
		{Issuer: is.URL(), Audiences: []string{"shop"}},
		{Issuer: other.URL(), JWKSURI: other.JWKSURL()},
	}, Options{Skew: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	forgeKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	forged, _ := testissuer.SignWith(forgeKey, "key-1", is.URL(), testissuer.Claims{Subject: "mallory", Audience: []string{"shop"}})
	good := token(t, is, testissuer.Claims{Subject: "alice", Audience: []string{"shop"}, Extra: map[string]any{"role": "admin"}})
	parts := strings.Split(good, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+is.URL()+`","sub":"root","aud":["shop"],"exp":9999999999}`)) + "." + parts[2]

	cases := []struct {
		name string
		tok  string
		want string // "" = valid
	}{
		{"valid", good, ""},
		{"valid from the other issuer (jwksUri)", token(t, other, testissuer.Claims{Subject: "bob"}), ""},
		{"forged signature with a known kid", forged, "verify"},
		{"tampered payload", tampered, "verify"},
		{"alg none", none, `unexpected signature algorithm "none"`},
		{"expired", token(t, is, testissuer.Claims{Audience: []string{"shop"}, Expiry: time.Now().Add(-time.Minute)}), "expired"},
		{"expired within skew", token(t, is, testissuer.Claims{Audience: []string{"shop"}, Expiry: time.Now().Add(-10 * time.Second)}), ""},
		{"not yet valid", token(t, is, testissuer.Claims{Audience: []string{"shop"}, NotBefore: time.Now().Add(time.Hour)}), "not valid before"},
		{"wrong audience", token(t, is, testissuer.Claims{Audience: []string{"bank"}}), "audience"},
		{"wrong issuer", token(t, is, testissuer.Claims{Issuer: "https://evil.example.com", Audience: []string{"shop"}}), "issuer not configured"},
		{"garbage", "a.b", "compact"},
		{"payload not JSON", "eyJhbGciOiJSUzI1NiJ9.bm90anNvbg.c2ln", "JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims, err := v.Verify(context.Background(), bearer(c.tok), nil)
			if c.want == "" {
				if err != nil || claims == nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
	claims, _ := v.Verify(context.Background(), bearer(good), nil)
	if claims["sub"] != "alice" || claims["role"] != "admin" {
		t.Fatalf("claims %v", claims)
	}
}

func TestTokenLocations(t *testing.T) {
	is := startIssuer(t)
	v, _ := New([]Provider{{Issuer: is.URL(), FromHeaders: []FromHeader{{Name: "X-Jwt", Prefix: "Token "}}, FromParams: []string{"jwt"}}}, Options{})
	tok := token(t, is, testissuer.Claims{Subject: "carol"})
	if c, err := v.Verify(context.Background(), map[string]string{"x-jwt": "Token " + tok}, nil); err != nil || c["sub"] != "carol" {
		t.Fatal(c, err)
	}
	if c, err := v.Verify(context.Background(), nil, url.Values{"jwt": {tok}}); err != nil || c == nil {
		t.Fatal(c, err)
	}
	// The default Authorization header is not a location of this provider.
	if c, err := v.Verify(context.Background(), bearer(tok), nil); err != nil || c != nil {
		t.Fatal("token taken from an unconfigured location", c, err)
	}
}

// TestRotation: the issuer rotates keys mid-run and retires the old ones;
// tokens signed with the new key verify (the JWKS is re-fetched once for
// the unknown kid), tokens signed with the retired key do not.
func TestRotation(t *testing.T) {
	is := startIssuer(t)
	v, _ := New([]Provider{{Issuer: is.URL()}}, Options{})
	old := token(t, is, testissuer.Claims{Subject: "a"})
	if _, err := v.VerifyToken(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	fetches := is.JWKSFetches.Load()
	if err := is.Rotate(true); err != nil {
		t.Fatal(err)
	}
	fresh := token(t, is, testissuer.Claims{Subject: "b"})
	if _, err := v.VerifyToken(context.Background(), fresh); err != nil {
		t.Fatalf("token with the rotated key rejected: %v", err)
	}
	if is.JWKSFetches.Load() != fetches+1 {
		t.Fatalf("JWKS fetched %d times after rotation, want 1", is.JWKSFetches.Load()-fetches)
	}
	if _, err := v.VerifyToken(context.Background(), old); err == nil {
		t.Fatal("token signed with a retired key accepted")
	}
}

// TestKeysUnavailable: a JWKS endpoint that is down or returns garbage
// rejects the token (never accepts it) and recovers when the endpoint does.
func TestKeysUnavailable(t *testing.T) {
	is := startIssuer(t)
	v, _ := New([]Provider{{Issuer: is.URL(), JWKSURI: is.JWKSURL()}}, Options{})
	tok := token(t, is, testissuer.Claims{Subject: "a"})
	is.Broken.Store(true)
	if _, err := v.VerifyToken(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("garbage JWKS: %v", err)
	}
	is.Broken.Store(false)
	if _, err := v.VerifyToken(context.Background(), tok); err != nil {
		t.Fatalf("after recovery: %v", err)
	}

	down := startIssuer(t)
	tok2 := token(t, down, testissuer.Claims{Subject: "a"})
	v2, _ := New([]Provider{{Issuer: down.URL()}}, Options{HTTPClient: nil})
	down.Close()
	if _, err := v2.VerifyToken(context.Background(), tok2); !errors.Is(err, ErrInvalidToken) || !errors.Is(err, ErrKeys) {
		t.Fatalf("discovery down: %v", err)
	}
}

// TestCachedTokenAndRotation: a verified token is answered from the cache
// until the provider fetches new keys; after a rotation that retires the old
// key, a token cached before it is verified again and rejected. A cached
// token past its exp (plus skew) is rejected too.
func TestCachedTokenAndRotation(t *testing.T) {
	is := startIssuer(t)
	now := time.Now()
	clock := func() time.Time { return now }
	v, _ := New([]Provider{{Issuer: is.URL()}}, Options{Now: clock, Skew: time.Second})
	old := token(t, is, testissuer.Claims{Subject: "a", Expiry: now.Add(time.Hour)})
	for i := 0; i < 2; i++ { // the first verification fetches keys, so caches as stale
		if _, err := v.VerifyToken(context.Background(), old); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256([]byte(old))
	if _, ok := v.cache.get(sum, now); !ok {
		t.Fatal("verified token not cached")
	}
	if err := is.Rotate(true); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyToken(context.Background(), token(t, is, testissuer.Claims{Subject: "b"})); err != nil {
		t.Fatalf("token with the rotated key rejected: %v", err)
	}
	if _, err := v.VerifyToken(context.Background(), old); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("cached token signed with a retired key: %v", err)
	}

	fresh := token(t, is, testissuer.Claims{Subject: "c", Expiry: now.Add(time.Minute)})
	for i := 0; i < 2; i++ {
		if _, err := v.VerifyToken(context.Background(), fresh); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := v.cache.get(sha256.Sum256([]byte(fresh)), now); !ok {
		t.Fatal("fresh token not cached")
	}
	now = now.Add(2 * time.Minute)
	if _, err := v.VerifyToken(context.Background(), fresh); !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired cached token: %v", err)
	}
}

// TestReloadableMerge: providers from several RequestAuthentications merge
// per issuer, keys of unchanged providers are kept across updates, and a
// token of an issuer removed from the configuration is rejected.
func TestReloadableMerge(t *testing.T) {
	is := startIssuer(t)
	other := startIssuer(t)
	a := Provider{Issuer: is.URL(), Audiences: []string{"shop"}, FromHeaders: []FromHeader{{Name: "x-token"}}}
	b := Provider{Issuer: is.URL(), Audiences: []string{"admin"}}
	c := Provider{Issuer: other.URL(), JWKSURI: "https://elsewhere.example.com/keys"}
	d := Provider{Issuer: other.URL(), JWKSURI: other.JWKSURL()}
	merged, conflicts := Merge([]Provider{a, d}, []Provider{b, c})
	if len(conflicts) != 1 || !errors.Is(conflicts[0], ErrDuplicateIssuer) {
		t.Fatalf("conflicts: %v", conflicts)
	}
	want := Provider{Issuer: is.URL(), Audiences: []string{"shop", "admin"},
		FromHeaders: []FromHeader{{Name: "x-token"}, {Name: "authorization", Prefix: "Bearer "}}, FromParams: []string{"access_token"}}
	if len(merged) != 2 || !reflect.DeepEqual(merged[0], want) || !reflect.DeepEqual(merged[1], d) {
		t.Fatalf("merged: %+v", merged)
	}

	v, _ := New(nil, Options{})
	r := NewReloadable(v)
	tok := token(t, is, testissuer.Claims{Subject: "a", Audience: []string{"admin"}})
	if c, err := r.Verify(context.Background(), bearer(tok), nil); c != nil || err != nil {
		t.Fatalf("no providers: %v %v", c, err)
	}
	if err := r.Update(merged); err != nil {
		t.Fatal(err)
	}
	if c, err := r.Verify(context.Background(), bearer(tok), nil); err != nil || c["sub"] != "a" {
		t.Fatalf("merged providers: %v %v", c, err)
	}
	fetches := is.JWKSFetches.Load()
	if err := r.Update(append(merged, Provider{Issuer: "https://third.example.com"})); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Verify(context.Background(), bearer(tok), nil); err != nil || is.JWKSFetches.Load() != fetches {
		t.Fatalf("unchanged provider re-fetched keys (%d) or failed: %v", is.JWKSFetches.Load()-fetches, err)
	}
	if err := r.Update([]Provider{d}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Verify(context.Background(), bearer(tok), nil); !errors.Is(err, ErrUnknownIssuer) {
		t.Fatalf("issuer removed from the configuration: %v", err)
	}
	if err := r.Update([]Provider{d, d}); !errors.Is(err, ErrDuplicateIssuer) || !reflect.DeepEqual(r.Current().Providers()[0], d) {
		t.Fatalf("duplicate issuers: %v", err)
	}
}
