package jwt

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Options configure a Verifier.
type Options struct {
	// Skew is the clock skew allowed on exp and nbf (default 60s).
	Skew time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// HTTPClient fetches discovery documents and JWKS (default: 5s timeout).
	HTTPClient *http.Client
	// CacheSize bounds the verified-token cache (default DefaultCacheSize;
	// negative: no cache).
	CacheSize int
}

// Verifier checks tokens against a set of providers. It implements
// policy/authz.TokenVerifier.
type Verifier struct {
	opts      Options
	providers map[string]*keys // by issuer
	order     []*keys
	cache     *tokenCache
}

// signingAlgs are the algorithms accepted; "none" and HMAC never are.
var signingAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA,
}

// New returns a Verifier for the providers; two with one issuer are an error.
func New(providers []Provider, opts Options) (*Verifier, error) {
	if opts.Skew <= 0 {
		opts.Skew = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	return build(providers, opts, nil)
}

// Update returns a Verifier for a new set of providers with v's options. A
// provider equal to one of v's keeps its fetched keys (no re-fetch on every
// config change); the token cache starts empty.
func (v *Verifier) Update(providers []Provider) (*Verifier, error) {
	return build(providers, v.opts, v.providers)
}

func build(providers []Provider, opts Options, reuse map[string]*keys) (*Verifier, error) {
	v := &Verifier{opts: opts, providers: map[string]*keys{}, cache: newTokenCache(opts.CacheSize)}
	for _, p := range providers {
		if p.Issuer == "" {
			return nil, ErrNoIssuer
		}
		if _, dup := v.providers[p.Issuer]; dup {
			return nil, fmt.Errorf("%w: %s", ErrDuplicateIssuer, p.Issuer)
		}
		k := reuse[p.Issuer]
		if k == nil || !reflect.DeepEqual(k.p, p) {
			k = newKeys(p, opts.HTTPClient, opts.Now)
		}
		v.providers[p.Issuer] = k
		v.order = append(v.order, k)
	}
	return v, nil
}

// Providers returns the configured providers, in order.
func (v *Verifier) Providers() []Provider {
	out := make([]Provider, len(v.order))
	for i, k := range v.order {
		out[i] = k.p
	}
	return out
}

// Verify finds a token in the request (the first configured location that
// holds one), verifies it and returns its claims. No token: nil, nil.
func (v *Verifier) Verify(ctx context.Context, headers map[string]string, query url.Values) (map[string]any, error) {
	raw := v.token(headers, query)
	if raw == "" {
		return nil, nil
	}
	return v.VerifyToken(ctx, raw)
}

// token looks in every provider's locations (headers by lower-case name).
func (v *Verifier) token(headers map[string]string, query url.Values) string {
	for _, k := range v.order {
		hs, ps := k.p.FromHeaders, k.p.FromParams
		if len(hs) == 0 && len(ps) == 0 {
			hs, ps = []FromHeader{{Name: "authorization", Prefix: "Bearer "}}, []string{"access_token"}
		}
		for _, h := range hs {
			val, ok := headers[strings.ToLower(h.Name)]
			if !ok {
				continue
			}
			if h.Prefix != "" {
				if len(val) < len(h.Prefix) || !strings.EqualFold(val[:len(h.Prefix)], h.Prefix) {
					continue
				}
				val = val[len(h.Prefix):]
			}
			if val = strings.TrimSpace(val); val != "" {
				return val
			}
		}
		for _, p := range ps {
			if val := query.Get(p); val != "" {
				return val
			}
		}
	}
	return ""
}

// VerifyToken verifies one compact JWT.
// A token verified before is answered from the cache (see tokenCache) with
// only exp and nbf checked again.
func (v *Verifier) VerifyToken(ctx context.Context, raw string) (map[string]any, error) {
	sum := sha256.Sum256([]byte(raw))
	now := v.opts.Now()
	if claims, ok := v.cache.get(sum, now); ok {
		if err := v.checkTimes(claims); err != nil {
			return nil, err
		}
		return claims, nil
	}
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return nil, err
	}
	k := v.providers[iss]
	if k == nil {
		return nil, fmt.Errorf("%w: %w %q", ErrInvalidToken, ErrUnknownIssuer, iss)
	}
	epoch := k.epoch.Load()
	set, err := k.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	verifier := oidc.NewVerifier(iss, set, &oidc.Config{
		SkipClientIDCheck: true, SkipExpiryCheck: true, SupportedSigningAlgs: signingAlgs, Now: v.opts.Now,
	})
	tok, err := verifier.Verify(oidc.ClientContext(ctx, v.opts.HTTPClient), raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrInvalidToken, err)
	}
	if err := v.checkTimes(claims); err != nil {
		return nil, err
	}
	if auds := k.p.Audiences; len(auds) > 0 && !slices.ContainsFunc(tok.Audience, func(a string) bool { return slices.Contains(auds, a) }) {
		return nil, fmt.Errorf("%w: audience %v not in %v", ErrInvalidToken, tok.Audience, auds)
	}
	until := now.Add(maxCacheAge)
	if exp := tok.Expiry.Add(v.opts.Skew); exp.Before(until) {
		until = exp
	}
	v.cache.add(sum, &cached{claims: claims, keys: k, epoch: epoch, until: until})
	return claims, nil
}

// checkTimes applies exp (required) and nbf with the configured skew.
func (v *Verifier) checkTimes(claims map[string]any) error {
	now := v.opts.Now()
	exp, ok := claims["exp"].(float64)
	if !ok {
		return fmt.Errorf("%w: no exp claim", ErrInvalidToken)
	}
	if now.After(time.Unix(int64(exp), 0).Add(v.opts.Skew)) {
		return fmt.Errorf("%w: expired at %s", ErrInvalidToken, time.Unix(int64(exp), 0).UTC().Format(time.RFC3339))
	}
	if nbf, ok := claims["nbf"].(float64); ok && now.Add(v.opts.Skew).Before(time.Unix(int64(nbf), 0)) {
		return fmt.Errorf("%w: not valid before %s", ErrInvalidToken, time.Unix(int64(nbf), 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// unverifiedIssuer reads iss from the payload to choose the provider; the
// signature is checked afterwards against that provider's keys only.
func unverifiedIssuer(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: not a compact JWS (%d parts)", ErrInvalidToken, len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", fmt.Errorf("%w: payload is not base64url", ErrInvalidToken)
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("%w: payload is not a JSON object", ErrInvalidToken)
	}
	if c.Iss == "" {
		return "", fmt.Errorf("%w: no iss claim", ErrInvalidToken)
	}
	return c.Iss, nil
}
