package jwt

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosenmesh/rosen/policy/jwt/testissuer"
)

// TestEndlessJWKS: a JWKS endpoint that answers without end is cut off at
// MaxDocumentBytes (the token is refused: keys unavailable) instead of
// being read into memory until the fetch timeout: 1 GiB grew the heap by
// 4.6 GB before.
func TestEndlessJWKS(t *testing.T) {
	is := startIssuer(t)
	tok := token(t, is, testissuer.Claims{Subject: "a"})
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","k":"`))
		chunk := []byte(strings.Repeat("A", 64<<10))
		for range 1 << 14 { // 1 GiB
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	v, _ := New([]Provider{{Issuer: is.URL(), JWKSURI: srv.URL}}, Options{})
	_, err := v.VerifyToken(context.Background(), tok)
	if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("endless JWKS: %v", err)
	}
	srv.CloseClientConnections()
	if n := sent.Load(); n > 64<<20 {
		t.Fatalf("%d bytes read from the endless JWKS", n)
	}
}

// TestBadSignaturesKeepCache: a token with the provider's issuer, a kid it
// lacks and a forged signature makes go-oidc fetch the JWKS again; the same key
// set coming back must not count as a rotation. It did (every successful
// fetch counted), so anyone could empty the verified-token cache with one
// forged token per request.
func TestBadSignaturesKeepCache(t *testing.T) {
	is := startIssuer(t)
	v, _ := New([]Provider{{Issuer: is.URL(), JWKSURI: is.JWKSURL()}}, Options{})
	good := token(t, is, testissuer.Claims{Subject: "a"})
	for range 2 { // the first verification fetches the keys, so caches as stale
		if _, err := v.VerifyToken(context.Background(), good); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256([]byte(good))
	if _, ok := v.cache.get(sum, time.Now()); !ok {
		t.Fatal("verified token not cached")
	}
	parts := strings.Split(good, ".")
	fetches := is.JWKSFetches.Load()
	for i := range 5 {
		// A kid the JWKS lacks: go-oidc fetches it again (a real kid with a
		// bad signature no longer fetches at all).
		hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT","kid":"forged-` + strconv.Itoa(i) + `"}`))
		forged := hdr + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte{byte(i), 1, 2, 3})
		if _, err := v.VerifyToken(context.Background(), forged); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("forged signature: %v", err)
		}
	}
	if is.JWKSFetches.Load() == fetches {
		t.Fatal("forged tokens fetched no JWKS: the test no longer shows anything")
	}
	if _, ok := v.cache.get(sum, time.Now()); !ok {
		t.Fatal("forged tokens emptied the verified-token cache")
	}
}

// TestForgedTokensDoNotHammerTheIssuer: go-oidc fetches the JWKS again for
// every token whose signature fails. A token whose kid is in the key set
// fetched last is now checked against those keys alone (twenty forged
// tokens with a real kid cost the identity provider twenty requests; now
// none). A made-up kid may be a rotation, so it fetches; once a fetch
// brings back the same key set the URL is answered from that copy for
// RefetchCooldown (twenty made-up kids: one request). A rotation that lands
// during the cooldown is picked up when it ends; one after a fetch that
// found a change, at once (TestRotation, and here after the forged tokens).
func TestForgedTokensDoNotHammerTheIssuer(t *testing.T) {
	is := startIssuer(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	v, _ := New([]Provider{{Issuer: is.URL(), JWKSURI: is.JWKSURL()}}, Options{Now: clock, CacheSize: -1})
	good := token(t, is, testissuer.Claims{Subject: "a"})
	if _, err := v.VerifyToken(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	fetches := is.JWKSFetches.Load()
	for i := range 20 {
		forged := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte{byte(i), 1, 2, 3})
		if _, err := v.VerifyToken(context.Background(), forged); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("forged signature: %v", err)
		}
	}
	if n := is.JWKSFetches.Load() - fetches; n != 0 {
		t.Fatalf("20 forged tokens with a known kid fetched the JWKS %d times, want 0", n)
	}
	// A rotation right after them is seen at once.
	if err := is.Rotate(true); err != nil {
		t.Fatal(err)
	}
	fresh := token(t, is, testissuer.Claims{Subject: "b"})
	if _, err := v.VerifyToken(context.Background(), fresh); err != nil {
		t.Fatalf("rotated key after forged tokens: %v", err)
	}
	if _, err := v.VerifyToken(context.Background(), good); err == nil {
		t.Fatal("token signed with a retired key accepted")
	}

	// Made-up kids: one fetch, then the copy for the cooldown. (The retired
	// key's token just now was one: its fetch started a cooldown; let it end.)
	now.Add(int64(RefetchCooldown + time.Second))
	fparts := strings.Split(fresh, ".")
	fetches = is.JWKSFetches.Load()
	for i := range 20 {
		hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT","kid":"made-up-` + strconv.Itoa(i) + `"}`))
		if _, err := v.VerifyToken(context.Background(), hdr+"."+fparts[1]+"."+fparts[2]); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("made-up kid: %v", err)
		}
	}
	if n := is.JWKSFetches.Load() - fetches; n != 1 {
		t.Fatalf("20 made-up kids fetched the JWKS %d times, want 1", n)
	}
	if _, err := v.VerifyToken(context.Background(), fresh); err != nil {
		t.Fatalf("good token during the cooldown: %v", err)
	}
	// A rotation during the cooldown: the new key is unknown until it ends.
	if err := is.Rotate(true); err != nil {
		t.Fatal(err)
	}
	third := token(t, is, testissuer.Claims{Subject: "c"})
	if _, err := v.VerifyToken(context.Background(), third); err == nil {
		t.Fatal("a key published during the cooldown was fetched: the cooldown did nothing")
	}
	now.Add(int64(RefetchCooldown + time.Second))
	if _, err := v.VerifyToken(context.Background(), third); err != nil {
		t.Fatalf("after the cooldown the rotated key is still unknown: %v", err)
	}
}
