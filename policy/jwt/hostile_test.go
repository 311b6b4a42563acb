package jwt

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

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
