package translate_test

import (
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	security "istio.io/api/security/v1beta1"

	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
)

func serverMesh(aps ...*model.AuthorizationPolicy) *model.Mesh {
	return &model.Mesh{Security: &model.Security{AuthorizationPolicies: aps}}
}

func allowPolicy(name string, selector map[string]string, rules ...*security.Rule) *model.AuthorizationPolicy {
	return &model.AuthorizationPolicy{
		Name: name, Namespace: "default", Action: model.ActionAllow, Rules: rules,
		Workloads: model.WorkloadSelector{Namespace: "default", Selector: selector},
		Source:    model.Source{File: "policies/" + name + ".yaml", Kind: "AuthorizationPolicy", Namespace: "default", Name: name},
	}
}

var reviewsServer = translate.Proxy{Kind: translate.Proxyless, Namespace: "default", Labels: map[string]string{"app": "reviews"}, InboundPorts: []uint32{7070}}

func inboundListeners(t *testing.T, r *translate.Resources) []*listenerv3.Listener {
	t.Helper()
	var out []*listenerv3.Listener
	for _, l := range r.Listeners {
		if strings.HasPrefix(l.GetName(), translate.InboundListenerPrefix) {
			out = append(out, l)
		}
	}
	return out
}

// Every inbound listener, its HCM and each RBAC config pass Envoy's own
// validation (ValidateAll does not look inside Any, so each is unpacked).
func TestInboundListenersValidate(t *testing.T) {
	m := serverMesh(allowPolicy("reads", map[string]string{"app": "reviews"},
		&security.Rule{To: []*security.Rule_To{{Operation: &security.Operation{Paths: []string{"/reviews.Reviews/*"}}}}}))
	r, err := translate.Translate(m, reviewsServer)
	if err != nil {
		t.Fatal(err)
	}
	ls := inboundListeners(t, r)
	if len(ls) != 2 || ls[0].GetName() != "xds.istio.io/grpc/lds/inbound/0.0.0.0:7070" || ls[1].GetName() != "xds.istio.io/grpc/lds/inbound/[::]:7070" {
		t.Fatalf("inbound listeners = %v", ls)
	}
	for _, l := range ls {
		if err := l.ValidateAll(); err != nil {
			t.Fatalf("%s: %v", l.GetName(), err)
		}
		hcm := &hcmv3.HttpConnectionManager{}
		if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
			t.Fatal(err)
		}
		if err := hcm.ValidateAll(); err != nil {
			t.Fatalf("%s HCM: %v", l.GetName(), err)
		}
		var names []string
		for _, f := range hcm.GetHttpFilters() {
			names = append(names, f.GetName())
			if f.GetName() != translate.RBACFilterName {
				continue
			}
			rb := &rbacv3.RBAC{}
			if err := f.GetTypedConfig().UnmarshalTo(rb); err != nil {
				t.Fatal(err)
			}
			if err := rb.ValidateAll(); err != nil {
				t.Fatalf("%s RBAC: %v", l.GetName(), err)
			}
		}
		if strings.Join(names, ",") != "envoy.filters.http.rbac,envoy.filters.http.router" {
			t.Fatalf("filters = %v", names)
		}
	}
}

// A policy for other labels leaves the server without RBAC (router only);
// a proxy without inbound ports gets no inbound listener at all.
func TestInboundSelection(t *testing.T) {
	m := serverMesh(allowPolicy("ratings", map[string]string{"app": "ratings"}, &security.Rule{}))
	r, err := translate.Translate(m, reviewsServer)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range inboundListeners(t, r) {
		hcm := &hcmv3.HttpConnectionManager{}
		if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
			t.Fatal(err)
		}
		if n := len(hcm.GetHttpFilters()); n != 1 || hcm.GetHttpFilters()[0].GetName() != translate.RouterFilterName {
			t.Fatalf("%s: filters %v, want the router only", l.GetName(), hcm.GetHttpFilters())
		}
	}
	client := translate.Proxy{Kind: translate.Proxyless, Namespace: "default", Labels: map[string]string{"app": "reviews"}}
	r, err = translate.Translate(m, client)
	if err != nil {
		t.Fatal(err)
	}
	if ls := inboundListeners(t, r); len(ls) != 0 {
		t.Fatalf("a client got inbound listeners %v", ls)
	}
}

// grpc-go NACKs RBAC header matchers on grpc-* and :scheme (A41): the
// translation names the policy's file and field instead.
func TestInboundRejectsGRPCHeaders(t *testing.T) {
	for _, key := range []string{"request.headers[grpc-timeout]", "request.headers[:scheme]", "request.headers[GRPC-Encoding]"} {
		m := serverMesh(allowPolicy("hdr", nil, &security.Rule{When: []*security.Condition{
			{Key: "request.headers[x-ok]", Values: []string{"1"}}, {Key: key, Values: []string{"x"}}}}))
		_, err := translate.Translate(m, reviewsServer)
		if err == nil {
			t.Fatalf("%s: translated", key)
		}
		for _, want := range []string{"policies/hdr.yaml", "AuthorizationPolicy default/hdr", "spec.rules[0].when[1].key", key} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("%s: error %q does not name %q", key, err, want)
			}
		}
		// The same policy is fine for a client (it has no inbound listener).
		if _, err := translate.Translate(m, translate.Proxy{Kind: translate.Proxyless}); err != nil {
			t.Fatalf("client: %v", err)
		}
	}
}

func TestParsePodPorts(t *testing.T) {
	got, err := translate.ParsePodPorts(`[{"name":"b","containerPort":9090},{"name":"a","containerPort":7070,"protocol":"tcp"},{"containerPort":9090},{"containerPort":53,"protocol":"UDP"}]`)
	if err != nil || len(got) != 2 || got[0] != 7070 || got[1] != 9090 {
		t.Fatalf("got %v, %v", got, err)
	}
	for in, want := range map[string]string{
		`not json`:                "want a JSON list",
		`[{"containerPort":0}]`:   "POD_PORTS[0].containerPort: 0",
		`[{"containerPort":-1}]`:  "POD_PORTS[0].containerPort: -1",
		`[{"containerPort":"x"}]`: "want a JSON list",
	} {
		if _, err := translate.ParsePodPorts(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", in, err, want)
		}
	}
}
