// Package validate is the gate in front of the xDS cache: nothing reaches a
// proxy unless every resource passes Envoy's proto validation (including the
// typed configs packed inside Any, which ValidateAll skips) and the
// cross-reference checks Envoy and grpc-go apply when they load a config.
package validate

import (
	"fmt"
	"regexp"
	"runtime"
	"sort"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
)

// Resources checks one proxy's resources. The error is model.Errors of
// *model.FieldError, each naming the resource in its message, the field
// path in Field and the config that produced it in Source.
func Resources(r *translate.Resources) error {
	return ResourcesShared(r, nil)
}

// ResourcesShared is Resources for resources translated with sh
// (translate.TranslateShared): a cluster or load assignment that already
// passed the per-resource checks through another proxy's resources is not
// checked again. The cross-reference checks, which depend on the proxy's
// whole set, always run.
func ResourcesShared(r *translate.Resources, sh *translate.Shared) error {
	if r == nil {
		return model.Errors{model.Errorf(model.Source{}, "", "no resources")}
	}
	c := &checker{res: r, shared: sh}
	c.protos()
	c.listeners()
	c.routes()
	c.clusters()
	c.endpoints()
	return c.errs.Err()
}

// Mesh translates the mesh for every Gateway (as a proxy its selector
// matches), for proxyless clients and for sidecars, and validates each.
// Identical problems found through several proxies are reported once.
// Proxies are translated and checked in parallel (translation is pure),
// one per CPU; the errors come out in proxy order whatever the timing.
func Mesh(m *model.Mesh) error {
	return MeshShared(m, translate.NewShared(m))
}

// MeshShared is Mesh with its translations and checks shared through sh, so
// that the xDS server can reuse them for its proxy groups.
func MeshShared(m *model.Mesh, sh *translate.Shared) error {
	sh = sh.For(m)
	proxies := []translate.Proxy{{Kind: translate.Proxyless}, {Kind: translate.Sidecar}}
	// A sidecar's config depends on its namespace (short host names resolve
	// there), so check one in every namespace the mesh mentions.
	for _, ns := range meshNamespaces(m) {
		proxies = append(proxies, translate.Proxy{Kind: translate.Sidecar, Namespace: ns})
	}
	for _, g := range m.Gateways {
		proxies = append(proxies, translate.Proxy{Kind: translate.Gateway, Labels: g.Selector, Namespace: g.Namespace})
	}
	type result struct{ translateErr, checkErr error }
	results := make([]result, len(proxies))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, p := range proxies {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, err := translate.TranslateShared(m, p, sh)
			if err != nil {
				results[i].translateErr = fmt.Errorf("translate for %s proxy: %w", p.Kind, err)
				return
			}
			results[i].checkErr = ResourcesShared(r, sh)
		}()
	}
	wg.Wait()
	var errs model.Errors
	seen := map[string]bool{}
	for _, res := range results {
		if res.translateErr != nil {
			errs = append(errs, res.translateErr)
			continue
		}
		for _, fe := range model.AsFieldErrors(res.checkErr) {
			if !seen[fe.Error()] {
				seen[fe.Error()] = true
				errs = append(errs, fe)
			}
		}
	}
	return errs.Err()
}

type checker struct {
	res          *translate.Resources
	shared       *translate.Shared // values checked through other proxies (ResourcesShared)
	errs         model.Errors
	clusterNames map[string]bool              // see clusterSet
	unpacked     map[*anypb.Any]proto.Message // walk.go: each Any unpacked once
	regexes      map[string]error             // walk.go: each regex checked once
}

var routePath = regexp.MustCompile(`^virtual_hosts\[\d+\]\.routes\[\d+\]`)

// fail records a problem in resource kind/name at field path.
func (c *checker) fail(kind, name, field, format string, args ...any) {
	key := translate.OriginKey(kind, name)
	src := c.res.Origins[key]
	if p := routePath.FindString(field); p != "" {
		if s, ok := c.res.Origins[key+"#"+p]; ok {
			src = s
		}
	}
	c.errs = append(c.errs, &model.FieldError{
		Source:  src,
		Field:   field,
		Message: fmt.Sprintf("%s %q: %s", kind, name, fmt.Sprintf(format, args...)),
	})
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// meshNamespaces lists, sorted, the namespaces of the mesh's services,
// gateways and virtual services.
func meshNamespaces(m *model.Mesh) []string {
	seen := map[string]bool{}
	for _, s := range m.Services {
		seen[s.Namespace] = true
	}
	for _, g := range m.Gateways {
		seen[g.Namespace] = true
	}
	for _, vs := range m.VirtualServices {
		seen[vs.Namespace] = true
	}
	delete(seen, "")
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}
