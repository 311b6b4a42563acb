package main

import (
	"context"
	"errors"
	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/istio"
	"github.com/rosenmesh/rosen/controlplane/model"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/policy/jwt"
	"github.com/rosenmesh/rosen/policy/jwt/testissuer"
)

func writeRA(t *testing.T, dir, issuer, jwks string) {
	t.Helper()
	doc := `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  jwtRules:
  - issuer: ` + issuer + `
    jwksUri: ` + jwks + `
    audiences: [shop]
`
	if err := os.WriteFile(filepath.Join(dir, "ra.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMeshJWTFollowsConfig: ext_authz trusts the issuers of the
// RequestAuthentications under --config, follows edits, and keeps the
// providers in force when the folder stops loading.
func TestMeshJWTFollowsConfig(t *testing.T) {
	a, err := testissuer.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := testissuer.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	writeRA(t, dir, a.URL(), a.JWKSURL())
	v, _ := jwt.New(nil, jwt.Options{})
	m := &meshJWT{log: zap.NewNop(), dirs: []string{dir}, tokens: jwt.NewReloadable(v)}
	if err := m.reload(); err != nil {
		t.Fatal(err)
	}
	verify := func(is *testissuer.Issuer) error {
		tok, _ := is.Token(testissuer.Claims{Subject: "alice", Audience: []string{"shop"}})
		_, err := m.tokens.Verify(context.Background(), map[string]string{"authorization": "Bearer " + tok}, nil)
		return err
	}
	if err := verify(a); err != nil {
		t.Fatalf("issuer of the RequestAuthentication: %v", err)
	}
	if err := verify(b); !errors.Is(err, jwt.ErrUnknownIssuer) {
		t.Fatalf("issuer not configured: %v", err)
	}

	writeRA(t, dir, b.URL(), b.JWKSURL())
	if err := m.reload(); err != nil {
		t.Fatal(err)
	}
	if err := verify(b); err != nil {
		t.Fatalf("after the edit: %v", err)
	}
	if err := verify(a); !errors.Is(err, jwt.ErrUnknownIssuer) {
		t.Fatalf("issuer removed by the edit: %v", err)
	}

	if err := os.WriteFile(filepath.Join(dir, "ra.yaml"), []byte("kind: RequestAuthentication\nspec: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.reload(); err == nil {
		t.Fatal("broken config loaded")
	}
	if err := verify(b); err != nil {
		t.Fatalf("providers in force lost on a broken config: %v", err)
	}
}

// The serve path: providers follow each mesh the control plane publishes.
func TestMeshJWTFollowsPublishedMesh(t *testing.T) {
	meshFor := func(is *testissuer.Issuer) *model.Mesh {
		dir := t.TempDir()
		writeRA(t, dir, is.URL(), is.JWKSURL())
		set, err := config.LoadDirs(dir)
		if err != nil {
			t.Fatal(err)
		}
		mesh, err := istio.Build(set)
		if err != nil {
			t.Fatal(err)
		}
		return mesh
	}
	a, err := testissuer.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := testissuer.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, _ := jwt.New(nil, jwt.Options{})
	m := &meshJWT{log: zap.NewNop(), tokens: jwt.NewReloadable(v)}
	verify := func(is *testissuer.Issuer) error {
		tok, _ := is.Token(testissuer.Claims{Subject: "alice", Audience: []string{"shop"}})
		_, err := m.tokens.Verify(context.Background(), map[string]string{"authorization": "Bearer " + tok}, nil)
		return err
	}
	m.follow(meshFor(a))
	if err := verify(a); err != nil {
		t.Fatalf("issuer of the published RequestAuthentication: %v", err)
	}
	if err := verify(b); !errors.Is(err, jwt.ErrUnknownIssuer) {
		t.Fatalf("issuer not published: %v", err)
	}
	m.follow(meshFor(b))
	if err := verify(b); err != nil {
		t.Fatalf("after the next mesh: %v", err)
	}
	if err := verify(a); !errors.Is(err, jwt.ErrUnknownIssuer) {
		t.Fatalf("issuer removed by the next mesh: %v", err)
	}
}
