// Package jwt verifies JSON Web Tokens for the ext_authz service the way
// Istio's RequestAuthentication asks Envoy's jwt_authn filter to: tokens are
// taken from the configured headers or query parameters, their issuer picks
// the provider, signatures are checked against the provider's JWKS (fetched
// from jwksUri or OIDC discovery with github.com/coreos/go-oidc/v3, cached,
// and re-fetched when a token names a key it has not seen), and issuer,
// audience, expiry and not-before are checked with a configurable skew.
package jwt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Sentinel errors; every verification failure wraps ErrInvalidToken.
var (
	ErrInvalidToken  = errors.New("jwt: invalid token")
	ErrUnknownIssuer = errors.New("jwt: issuer not configured")
	ErrKeys          = errors.New("jwt: keys unavailable")
	// Configuration errors.
	ErrNoIssuer        = errors.New("jwt: provider without issuer")
	ErrDuplicateIssuer = errors.New("jwt: issuer configured twice")
)

// FromHeader is a header that carries a token, with its value prefix.
type FromHeader struct {
	Name   string `json:"name"`
	Prefix string `json:"prefix,omitempty"`
}

// Provider is one trusted issuer (an Istio RequestAuthentication jwtRules entry).
type Provider struct {
	Issuer string `json:"issuer"`
	// JWKSURI is where the keys are; empty means OIDC discovery at
	// Issuer/.well-known/openid-configuration.
	JWKSURI   string   `json:"jwksUri,omitempty"`
	Audiences []string `json:"audiences,omitempty"`
	// FromHeaders and FromParams say where the token is; both empty means
	// "Authorization: Bearer <token>" and the access_token parameter.
	FromHeaders []FromHeader `json:"fromHeaders,omitempty"`
	FromParams  []string     `json:"fromParams,omitempty"`
	// ForwardOriginalToken and OutputPayloadToHeader are honoured by the
	// Envoy jwt_authn filter; kept here so one config feeds both.
	ForwardOriginalToken  bool   `json:"forwardOriginalToken,omitempty"`
	OutputPayloadToHeader string `json:"outputPayloadToHeader,omitempty"`
}

// keys resolves a provider's key set once, lazily: discovery is retried on
// the next request after a failure rather than cached as broken.
type keys struct {
	p      Provider
	client *http.Client
	mu     sync.Mutex
	set    oidc.KeySet
	// epoch counts the changes of the documents (discovery, JWKS) fetched
	// for this provider: a change means the keys may have rotated, so
	// verified-token cache entries from before it are verified again. A
	// fetch that brings the same document back changes nothing: any token
	// with a valid issuer but a bad signature makes go-oidc fetch the JWKS
	// again, and counting those fetches let such tokens empty the cache.
	epoch atomic.Uint64
	// docs holds, per URL, the last document fetched from it (*fetchedDoc).
	docs sync.Map
	now  func() time.Time
}

func newKeys(p Provider, base *http.Client, now func() time.Time) *keys {
	k := &keys{p: p, now: now}
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	k.client = &http.Client{Timeout: base.Timeout, Transport: fetchCounter{rt: rt, n: &k.epoch, docs: &k.docs, now: now}}
	return k
}

// RefetchCooldown is how long after a fetch that brought back an unchanged
// document the same URL is answered from the copy instead of the network.
// go-oidc fetches the JWKS again for every token whose kid it does not
// know, so without it each token with a made-up kid cost the identity
// provider a request. A key rotation is still picked up at once when the
// previous fetch found a change (or was the first), and within this long
// otherwise. (A token whose kid is known but whose signature is wrong
// fetches only once the last fetch is this old: see guardedSet.) Envoy's jwt_authn does not fetch
// on an unknown kid at all: it waits for its cache duration (5 minutes by
// default).
const RefetchCooldown = 10 * time.Second

// fetchedDoc is the last document a URL answered with.
type fetchedDoc struct {
	sum   [sha256.Size]byte
	body  []byte
	at    time.Time                    // when it was fetched
	until time.Time                    // answered from body until then (the last fetch changed nothing)
	byKid map[string][]jose.JSONWebKey // the keys with a kid, when the document is a JWKS
}

// parseKids reads a JWKS's keys by kid (nil when body is not a key set
// go-jose reads in full; go-oidc's own parser then decides alone).
func parseKids(body []byte) map[string][]jose.JSONWebKey {
	var set jose.JSONWebKeySet
	if json.Unmarshal(body, &set) != nil || len(set.Keys) == 0 {
		return nil
	}
	out := map[string][]jose.JSONWebKey{}
	for _, k := range set.Keys {
		// Like go-oidc's own parser, a key whose alg is not a signature
		// algorithm accepted here (RSA-OAEP, ES256K, ...) is no key to
		// verify with: without this, a token signed with an encryption key
		// published without use was accepted.
		if k.KeyID != "" && k.Valid() && (k.Use == "" || k.Use == "sig") && (k.Algorithm == "" || slices.Contains(signingAlgs, k.Algorithm)) {
			out[k.KeyID] = append(out[k.KeyID], k)
		}
	}
	return out
}

// guardedSet is the provider's key set: go-oidc's RemoteKeySet, except
// that a token whose kid is in the JWKS last fetched is checked against
// those keys alone. go-oidc fetches the JWKS again whenever a signature
// fails, even for a key it has, so every forged token with a real kid cost
// the identity provider a request and started a RefetchCooldown that
// delayed a real rotation. An issuer that rotates a key but keeps its kid
// (OIDC's key rotation advice rules it out, but nothing enforces it) would
// go unseen for ever, so a token no key under its kid verifies lets go-oidc
// fetch again once the last fetch is RefetchCooldown old: forged tokens with
// a real kid cost the issuer at most one request per cooldown.
type guardedSet struct {
	inner oidc.KeySet
	url   string // as fetchCounter files it
	docs  *sync.Map
	now   func() time.Time
}

func (g *guardedSet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	v, ok := g.docs.Load(g.url)
	if !ok || v.(*fetchedDoc).byKid == nil {
		return g.inner.VerifySignature(ctx, raw)
	}
	jws, err := jose.ParseSigned(raw, joseAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return g.inner.VerifySignature(ctx, raw) // go-oidc gives its own error
	}
	d := v.(*fetchedDoc)
	keys := d.byKid[jws.Signatures[0].Header.KeyID]
	if len(keys) == 0 {
		return g.inner.VerifySignature(ctx, raw) // unknown kid (or none): go-oidc may fetch
	}
	for i := range keys {
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, nil
		}
	}
	if !g.now().Before(d.at.Add(RefetchCooldown)) {
		return g.inner.VerifySignature(ctx, raw) // the key under this kid may have changed
	}
	return nil, fmt.Errorf("failed to verify signature with key %q", jws.Signatures[0].Header.KeyID)
}

var joseAlgs = func() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(signingAlgs))
	for i, a := range signingAlgs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}()

// fetchCounter counts the successful fetches through a provider's client
// that bring a document different from the URL's previous one, and answers
// from the previous document during a RefetchCooldown.
type fetchCounter struct {
	rt   http.RoundTripper
	n    *atomic.Uint64
	docs *sync.Map
	now  func() time.Time
}

func (f fetchCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	u := r.URL.Redacted()
	if v, ok := f.docs.Load(u); ok && f.now().Before(v.(*fetchedDoc).until) {
		d := v.(*fetchedDoc)
		return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(d.body)),
			ContentLength: int64(len(d.body)), Request: r}, nil
	}
	resp, err := f.rt.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	b := &limitedBody{rc: resp.Body, left: MaxDocumentBytes, url: u}
	if resp.StatusCode == http.StatusOK {
		b.h = sha256.New()
		b.done = func(sum [sha256.Size]byte, body []byte) {
			d := &fetchedDoc{sum: sum, body: body, at: f.now(), byKid: parseKids(body)}
			prev, ok := f.docs.Load(u)
			changed := !ok || prev.(*fetchedDoc).sum != sum
			if !changed {
				d.until = f.now().Add(RefetchCooldown)
			}
			f.docs.Store(u, d) // go-oidc runs one fetch per key set at a time
			if changed {
				f.n.Add(1)
			}
		}
	}
	resp.Body = b
	return resp, nil
}

// MaxDocumentBytes bounds a discovery document or JWKS: go-oidc reads the
// whole body into memory, so an endpoint answering without end would
// otherwise grow the heap until the fetch timeout (gigabytes). Real key sets
// are a few KiB.
const MaxDocumentBytes = 1 << 20

// limitedBody fails a read past its limit; a body read to its end is
// passed to done (its SHA-256 and a copy).
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	url  string
	h    hash.Hash
	buf  []byte
	done func([sha256.Size]byte, []byte)
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("%w: %s: document larger than %d bytes", ErrKeys, b.url, MaxDocumentBytes)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.h != nil {
		b.h.Write(p[:n])
		b.buf = append(b.buf, p[:n]...)
		if err == io.EOF {
			var sum [sha256.Size]byte
			b.h.Sum(sum[:0])
			b.h = nil
			b.done(sum, b.buf)
		}
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

func (k *keys) get(ctx context.Context) (oidc.KeySet, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.set != nil {
		return k.set, nil
	}
	octx := oidc.ClientContext(context.Background(), k.client)
	uri := k.p.JWKSURI
	if uri == "" {
		dctx, cancel := context.WithCancel(oidc.ClientContext(ctx, k.client))
		defer cancel()
		prov, err := oidc.NewProvider(dctx, k.p.Issuer)
		if err != nil {
			return nil, fmt.Errorf("%w: discovery for %s: %w", ErrKeys, k.p.Issuer, err)
		}
		var meta struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := prov.Claims(&meta); err != nil || meta.JWKSURI == "" {
			return nil, fmt.Errorf("%w: discovery for %s has no jwks_uri", ErrKeys, k.p.Issuer)
		}
		uri = meta.JWKSURI
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("%w: jwks_uri %q: %w", ErrKeys, uri, err)
	}
	k.set = &guardedSet{inner: oidc.NewRemoteKeySet(octx, uri), url: u.Redacted(), docs: &k.docs, now: k.now}
	return k.set, nil
}
