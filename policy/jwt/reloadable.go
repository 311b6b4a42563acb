package jwt

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync/atomic"

	security "istio.io/api/security/v1beta1"
)

// Reloadable is a token verifier whose providers follow the configuration
// (the RequestAuthentications of the mesh plus static ones): Update swaps
// the provider set atomically, keeping the keys of unchanged providers.
// It implements policy/authz.TokenVerifier.
type Reloadable struct {
	cur atomic.Pointer[Verifier]
}

// NewReloadable starts from v (its options are used for every update).
func NewReloadable(v *Verifier) *Reloadable {
	r := &Reloadable{}
	r.cur.Store(v)
	return r
}

// Update puts a new provider set in force; on error the old one stays.
func (r *Reloadable) Update(providers []Provider) error {
	v, err := r.cur.Load().Update(providers)
	if err != nil {
		return err
	}
	r.cur.Store(v)
	return nil
}

// Current returns the verifier in force.
func (r *Reloadable) Current() *Verifier { return r.cur.Load() }

// Verify verifies the request's token with the providers in force.
func (r *Reloadable) Verify(ctx context.Context, headers map[string]string, query url.Values) (map[string]any, error) {
	return r.cur.Load().Verify(ctx, headers, query)
}

// defaultLocations is where a provider without fromHeaders/fromParams looks.
var defaultLocations = Provider{FromHeaders: []FromHeader{{Name: "authorization", Prefix: "Bearer "}}, FromParams: []string{"access_token"}}

// FromJWTRules turns Istio RequestAuthentication jwtRules into providers.
func FromJWTRules(rules []*security.JWTRule) []Provider {
	out := make([]Provider, 0, len(rules))
	for _, r := range rules {
		p := Provider{
			Issuer: r.GetIssuer(), JWKSURI: r.GetJwksUri(), Audiences: slices.Clone(r.GetAudiences()),
			FromParams: slices.Clone(r.GetFromParams()), ForwardOriginalToken: r.GetForwardOriginalToken(),
			OutputPayloadToHeader: r.GetOutputPayloadToHeader(),
		}
		for _, h := range r.GetFromHeaders() {
			p.FromHeaders = append(p.FromHeaders, FromHeader{Name: h.GetName(), Prefix: h.GetPrefix()})
		}
		out = append(out, p)
	}
	return out
}

// Merge joins provider lists into one provider per issuer, in first-seen
// order. Ext_authz serves every gateway, so one issuer declared by several
// RequestAuthentications accepts the union of their audiences (none declared
// anywhere means any) and token locations; each gateway's jwt_authn still
// enforces its own. Two different jwksUris for one issuer cannot be merged:
// the first is kept and the conflict returned.
func Merge(lists ...[]Provider) ([]Provider, []error) {
	var out []Provider
	var errs []error
	at := map[string]int{}
	for _, list := range lists {
		for _, p := range list {
			i, seen := at[p.Issuer]
			if !seen {
				at[p.Issuer] = len(out)
				out = append(out, p)
				continue
			}
			q := &out[i]
			if q.JWKSURI != p.JWKSURI {
				errs = append(errs, fmt.Errorf("%w: %s with jwksUri %q and %q; keeping the first", ErrDuplicateIssuer, p.Issuer, q.JWKSURI, p.JWKSURI))
				continue
			}
			if len(q.Audiences) > 0 && len(p.Audiences) > 0 {
				q.Audiences = union(q.Audiences, p.Audiences)
			} else {
				q.Audiences = nil
			}
			qh, qp := locations(*q)
			ph, pp := locations(p)
			q.FromHeaders, q.FromParams = union(qh, ph), union(qp, pp)
		}
	}
	return out, errs
}

func locations(p Provider) ([]FromHeader, []string) {
	if len(p.FromHeaders) == 0 && len(p.FromParams) == 0 {
		return defaultLocations.FromHeaders, defaultLocations.FromParams
	}
	return p.FromHeaders, p.FromParams
}

func union[T comparable](a, b []T) []T {
	out := slices.Clone(a)
	for _, v := range b {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
