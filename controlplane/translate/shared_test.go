package translate_test

import (
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/rosenmesh/rosen/controlplane/translate"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

// sameResources: every resource of a equals the one of b at the same place.
func sameResources(t *testing.T, what string, a, b *translate.Resources) {
	t.Helper()
	var as, bs []proto.Message
	for _, r := range []*translate.Resources{a, b} {
		var all []proto.Message
		for _, x := range r.Listeners {
			all = append(all, x)
		}
		for _, x := range r.Routes {
			all = append(all, x)
		}
		for _, x := range r.Clusters {
			all = append(all, x)
		}
		for _, x := range r.Endpoints {
			all = append(all, x)
		}
		for _, x := range r.Secrets {
			all = append(all, x)
		}
		if as == nil {
			as = all
		} else {
			bs = all
		}
	}
	if len(as) != len(bs) {
		t.Fatalf("%s: %d resources shared, %d alone", what, len(as), len(bs))
	}
	for i := range as {
		if !proto.Equal(as[i], bs[i]) {
			t.Fatalf("%s: resource %d differs:\n shared %v\n alone  %v", what, i, as[i], bs[i])
		}
	}
}

// TestTranslateSharedEqualsTranslate: on every golden input, translating
// for several proxies through one Shared gives exactly what translating each
// alone gives; Envoy proxies get the very same cluster values, proxyless
// clients their own; and a memo of another mesh is not used.
func TestTranslateSharedEqualsTranslate(t *testing.T) {
	files, _ := filepath.Glob("testdata/in/[a-z]*.yaml")
	if len(files) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, f := range files {
		m, own := goldenCase(t, f)
		proxies := []translate.Proxy{own, {Kind: translate.Proxyless}, {Kind: translate.Sidecar, Namespace: "default"},
			{Kind: translate.Gateway, Namespace: "istio-system", Labels: map[string]string{"istio": "ingressgateway"}}}
		sh := translate.NewShared(m)
		var envoyClusters map[string]any
		for _, p := range proxies {
			shared, err1 := translate.TranslateShared(m, p, sh)
			alone, err2 := translate.Translate(m, p)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s %s: %v / %v", f, p.Kind, err1, err2)
			}
			sameResources(t, filepath.Base(f)+" "+string(p.Kind), shared, alone)
			if err := validate.ResourcesShared(shared, sh); (err == nil) != (validate.Resources(alone) == nil) {
				t.Fatalf("%s %s: the shared gate says %v", f, p.Kind, err)
			}
			if p.Kind == translate.Proxyless {
				continue
			}
			if envoyClusters == nil {
				envoyClusters = map[string]any{}
				for _, c := range shared.Clusters {
					envoyClusters[c.GetName()] = c
				}
				continue
			}
			reused := 0
			for _, c := range shared.Clusters {
				if envoyClusters[c.GetName()] == any(c) {
					reused++
				}
			}
			if len(m.Services) > 0 && reused == 0 {
				t.Errorf("%s: no cluster value shared between Envoy proxies", filepath.Base(f))
			}
		}
		other, _ := goldenCase(t, f) // the same input, another Mesh value
		a, _ := translate.TranslateShared(other, own, sh)
		b, _ := translate.TranslateShared(m, own, sh)
		for i := range a.Clusters {
			if i < len(b.Clusters) && a.Clusters[i] == b.Clusters[i] {
				t.Fatalf("%s: a memo of another mesh was used", f)
			}
		}
	}
}
