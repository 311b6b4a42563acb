package validate_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/istio"
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

// breakAll walks m through every field by plain reflection (as the gate
// did before its walk was type-directed), unpacking and re-packing every
// Any, and breaks every checked message it meets: a regex that does not
// compile, a cluster that does not exist. It returns the field paths of
// the errors the gate must then report.
func breakAll(t *testing.T, m protoreflect.Message, path string) []string {
	var want []string
	join := func(a, b string) string {
		if a == "" {
			return b
		}
		return a + "." + b
	}
	switch x := m.Interface().(type) {
	case *matcherv3.RegexMatcher:
		x.Regex = "(("
		return []string{join(path, "regex")}
	case *corev3.HttpUri:
		x.HttpUpstreamType = &corev3.HttpUri_Cluster{Cluster: "nowhere"}
		return []string{join(path, "cluster")}
	case *corev3.GrpcService_EnvoyGrpc:
		x.ClusterName = "nowhere"
		return []string{join(path, "cluster_name")}
	case *anypb.Any:
		inner, err := x.UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		want = breakAll(t, inner.ProtoReflect(), path)
		if err := x.MarshalFrom(inner); err != nil {
			t.Fatal(err)
		}
		return want
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := join(path, string(fd.Name()))
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				want = append(want, breakAll(t, v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", p, i))...)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, e protoreflect.Value) bool {
				want = append(want, breakAll(t, e.Message(), fmt.Sprintf("%s[%s]", p, k.String()))...)
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			want = append(want, breakAll(t, v.Message(), p)...)
		}
		return true
	})
	return want
}

// TestTypeDirectedWalkMissesNothing breaks every checked message in the
// resources of every translator golden case, for every proxy kind, and
// expects the gate to report each one at its path: the walk's pruning
// never skips a place a check applies to.
func TestTypeDirectedWalkMissesNothing(t *testing.T) {
	cases, _ := filepath.Glob("../translate/testdata/in/[^_]*.yaml")
	if len(cases) == 0 {
		t.Fatal("no golden inputs: the translate testdata moved?")
	}
	checked := 0
	for _, in := range cases {
		var objs []*config.Object
		for _, f := range []string{"../translate/testdata/in/_services.yaml", in} {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			o, err := config.ParseYAML(f, data)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			objs = append(objs, o...)
		}
		set, errs := config.NewSet(objs)
		if len(errs) > 0 {
			continue // a case that redefines a shared service
		}
		m, err := istio.Build(set)
		if err != nil {
			continue
		}
		proxies := []translate.Proxy{{Kind: translate.Proxyless}, {Kind: translate.Sidecar, Namespace: "default"}}
		for _, g := range m.Gateways {
			proxies = append(proxies, translate.Proxy{Kind: translate.Gateway, Labels: g.Selector, Namespace: g.Namespace})
		}
		for _, p := range proxies {
			r, err := translate.Translate(m, p)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			add := func(kind, name string, msg proto.Message) {
				for _, f := range breakAll(t, msg.ProtoReflect(), "") {
					want = append(want, kind+" "+name+" "+f)
				}
			}
			for _, x := range r.Listeners {
				add(translate.KindListener, x.GetName(), x)
			}
			for _, x := range r.Routes {
				add(translate.KindRoute, x.GetName(), x)
			}
			for _, x := range r.Clusters {
				add(translate.KindCluster, x.GetName(), x)
			}
			var got []string
			for _, fe := range model.AsFieldErrors(validate.Resources(r)) {
				if strings.Contains(fe.Message, `"(("`) || strings.Contains(fe.Message, `"nowhere"`) {
					kind, rest, _ := strings.Cut(fe.Message, " ")
					name := rest[:strings.Index(rest[1:], `"`)+2]
					got = append(got, kind+" "+strings.Trim(name, `"`)+" "+fe.Field)
				}
			}
			sort.Strings(want)
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s, %s proxy: the gate reported\n%s\nbut checked messages are at\n%s", in, p.Kind, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			checked += len(want)
		}
	}
	if checked == 0 {
		t.Fatal("no checked message in any golden case: the test proves nothing")
	}
	t.Logf("%d checked messages broken and found", checked)
}
