package config

import (
	"strings"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/rosenmesh/rosen/controlplane/model"
)

func TestParseYAMLKinds(t *testing.T) {
	data := `# leading comment
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews
  resourceVersion: "12"
  uid: abc
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
    timeout: 1.5s
--- # only comments follow
# nothing
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop, labels: {app: reviews}}
spec:
  ports: [{name: http, port: 9080, appProtocol: http}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-v1, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1], conditions: {ready: false}}]
---
apiVersion: v1
kind: Secret
metadata: {name: cert}
type: kubernetes.io/tls
data: {tls.crt: Y2VydA==}
stringData: {tls.key: key}
`
	objs, err := ParseYAML("a.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 4 {
		t.Fatalf("objects = %d, want 4", len(objs))
	}
	vs, ok := objs[0].Spec.(*networking.VirtualService)
	if !ok || objs[0].Line != 3 || objs[0].Namespace != "default" || vs.GetHttp()[0].GetTimeout().AsDuration().Seconds() != 1.5 {
		t.Errorf("virtual service = %+v line %d", objs[0].Spec, objs[0].Line)
	}
	if svc, ok := objs[1].Spec.(*corev1.Service); !ok || objs[1].Namespace != "shop" || objs[1].Labels["app"] != "reviews" || svc.Spec.Ports[0].Port != 9080 || objs[1].Line != 17 {
		t.Errorf("service = %+v line %d", objs[1], objs[1].Line)
	}
	if es, ok := objs[2].Spec.(*discoveryv1.EndpointSlice); !ok || *es.Endpoints[0].Conditions.Ready {
		t.Errorf("endpoint slice = %+v", objs[2].Spec)
	}
	sec := objs[3].Spec.(*corev1.Secret)
	if string(sec.Data["tls.crt"]) != "cert" || string(sec.Data["tls.key"]) != "key" {
		t.Errorf("secret data = %q", sec.Data)
	}
}

func TestParseYAMLErrors(t *testing.T) {
	cases := []parseErrorCase{
		{"unknown spec field", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  htp: []\n",
			[]string{`f.yaml:6: VirtualService default/reviews: spec: unknown field "htp"`}},
		{"nested unknown fields, all reported", "\n\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route: [{destination: {host: a, hots: b}}]\n    retrys: {}\n",
			[]string{
				`f.yaml:10: VirtualService default/r: spec.http[0]: unknown field "retrys"`,
				`f.yaml:9: VirtualService default/r: spec.http[0].route[0].destination: unknown field "hots"`,
			}},
		{"unknown metadata field", "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g, nmespace: x}\nspec: {}\n",
			[]string{`f.yaml:3: Gateway default/g: metadata: unknown field "nmespace"`}},
		{"unknown kind", "apiVersion: apps/v2\nkind: Deployment\nmetadata: {name: d}\n",
			[]string{`f.yaml:2: Deployment default/d: kind: unknown kind "Deployment" (apiVersion "apps/v2"); supported: AuthorizationPolicy, DestinationRule, EndpointSlice, Gateway, RateLimitPolicy, RequestAuthentication, Secret, Service, ServiceEntry, VirtualService, WorkloadEntry`}},
		{"wrong apiVersion", "apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: g}\nspec: {}\n",
			[]string{`f.yaml:1: Gateway default/g: apiVersion: unsupported apiVersion "networking.istio.io/v2" for Gateway (want networking.istio.io/v1, v1beta1 or v1alpha3)`}},
		{"missing name", "apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\nspec: {ports: [{port: 80}]}\n",
			[]string{`f.yaml:3: Service x/: metadata.name: required`}},
		{"bad enum", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec: {hosts: [a.b.c], resolution: MAGIC}\n",
			[]string{`f.yaml:4: ServiceEntry default/s: spec.resolution: invalid value for enum field resolution: "MAGIC"`}},
		{"wrong type deep down", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route: [{destination: {host: r}}]\n    timeout: 5m\n  - route:\n    - destination: {host: r}\n      weight: 50\n    - destination: {host: r}\n      weight: eighty\n",
			[]string{`f.yaml:13: VirtualService default/r: spec.http[1].route[1].weight: invalid value for int32 field weight: "eighty"`}},
		{"wrong type in a map", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - match:\n    - headers:\n        end-user: {exact: [1, 2]}\n    route: [{destination: {host: r}}]\n",
			[]string{`f.yaml:9: VirtualService default/r: spec.http[0].match[0].headers["end-user"].exact: invalid value for string field exact: [`}},
		{"kube unknown field", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n  - port: 80\n    prot: 1\n",
			[]string{`f.yaml:7: Service default/s: spec.ports[0]: unknown field "prot"`}},
		{"secret without key", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\ndata: {tls.crt: Y2VydA==}\n",
			[]string{`f.yaml:5: Secret default/s: data.tls.key: required (in data, base64, or stringData)`}},
		{"malformed yaml in second doc", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n---\n# c\napiVersion: v1\nkind: [\n",
			[]string{`f.yaml:8: invalid YAML: did not find expected node content`}},
		{"duplicate key", "apiVersion: v1\nkind: Service\nkind: Service\nmetadata: {name: s}\n",
			[]string{`f.yaml:3: invalid YAML: key "kind" already set in map`}},
		{"not a mapping", "- a\n- b\n", []string{`f.yaml:1: invalid document: expected a mapping with apiVersion, kind and metadata`}},
		{"binary file", "apiVersion: v1\nkind: Service\n\x89PNG\r\n\x1a\n\x00\xff",
			[]string{`f.yaml:3: not UTF-8 text (byte 0x89 at offset 29; a binary file?): config files are YAML in UTF-8`}},
		{"latin-1 text", "apiVersion: v1\nkind: Service\nmetadata: {name: caf\xe9}\n",
			[]string{`f.yaml:3: not UTF-8 text (byte 0xe9 at offset 49; a binary file?): config files are YAML in UTF-8`}},
	}
	checkParseErrors(t, cases)
}

// parseErrorCase is a document and the exact errors ParseYAML gives for it
// (as file f.yaml).
type parseErrorCase struct {
	name, doc string
	want      []string
}

func checkParseErrors(t *testing.T, cases []parseErrorCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseYAML("f.yaml", []byte(c.doc))
			if err == nil {
				t.Fatal("no error")
			}
			var got []string
			for _, fe := range model.AsFieldErrors(err) {
				got = append(got, fe.Error())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func FuzzParseYAML(f *testing.F) {
	for _, s := range []string{
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec: {hosts: [r], http: [{route: [{destination: {host: r}}]}]}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: c}\nstringData: {tls.crt: a, tls.key: b}\n",
		"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e}\naddressType: IPv4\nendpoints: [{addresses: [1.2.3.4]}]\n",
		"---\n--- #x\n...\nkind: &a [*a]\n",
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n  spec: {ports: [{port: 80}]}\n- &i {apiVersion: v1, kind: List, items: [*i]}\nmetadata: {resourceVersion: \"\"}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := ParseYAML("fuzz.yaml", data)
		for _, o := range objs {
			if o.Spec == nil || o.Name == "" || o.Namespace == "" {
				t.Fatalf("incomplete object %+v", o)
			}
		}
		_ = err
	})
}

func TestDurationsInIstioForm(t *testing.T) {
	objs, err := ParseYAML("d.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: d
spec:
  hosts: [d]
  http:
  - timeout: 1m30s
    fault:
      delay:
        fixedDelay: 100ms
    retries:
      perTryTimeout: 2.5s
    corsPolicy:
      maxAge: 24h
    route:
    - destination:
        host: d
`))
	if err != nil {
		t.Fatal(err)
	}
	vs := objs[0].Spec.(*networking.VirtualService)
	h := vs.GetHttp()[0]
	if got := h.GetTimeout().AsDuration().String(); got != "1m30s" {
		t.Errorf("timeout %s", got)
	}
	if got := h.GetFault().GetDelay().GetFixedDelay().AsDuration().String(); got != "100ms" {
		t.Errorf("fixedDelay %s", got)
	}
	if got := h.GetRetries().GetPerTryTimeout().AsDuration().String(); got != "2.5s" {
		t.Errorf("perTryTimeout %s", got)
	}
	if got := h.GetCorsPolicy().GetMaxAge().AsDuration().String(); got != "24h0m0s" {
		t.Errorf("maxAge %s", got)
	}

	_, err = ParseYAML("d.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: d
spec:
  hosts: [d]
  http:
  - timeout: soon
    route:
    - destination:
        host: d
`))
	want := `d.yaml:8: VirtualService default/d: spec.http[0].timeout: invalid duration "soon" (use a number with a unit: 100ms, 5s, 1m, 2h)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// TestParseYAMLReusing: documents whose text and position are unchanged keep
// their object (same pointer); an edited one is parsed anew; a shift of lines
// re-parses what moved, so every Source line stays right; errors are still
// reported.
func TestParseYAMLReusing(t *testing.T) {
	doc := func(name, addr string) string {
		return "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " + name +
			"\n  labels: {kubernetes.io/service-name: svc}\naddressType: IPv4\nendpoints:\n- addresses: [\"" + addr + "\"]\n"
	}
	v1 := doc("a", "10.0.0.1") + "---\n" + doc("b", "10.0.0.2") + "---\n" + doc("c", "10.0.0.3")
	first, err := ParseYAML("eps.yaml", []byte(v1))
	if err != nil || len(first) != 3 {
		t.Fatalf("parse: %d objects, %v", len(first), err)
	}

	v2 := doc("a", "10.0.0.1") + "---\n" + doc("b", "10.0.0.9") + "---\n" + doc("c", "10.0.0.3")
	second, err := ParseYAMLReusing("eps.yaml", []byte(v2), first)
	if err != nil || len(second) != 3 {
		t.Fatalf("reparse: %d objects, %v", len(second), err)
	}
	if second[0] != first[0] || second[2] != first[2] {
		t.Error("unchanged documents were parsed again")
	}
	if second[1] == first[1] {
		t.Fatal("the edited document was reused")
	}
	if got := second[1].Spec.(*discoveryv1.EndpointSlice).Endpoints[0].Addresses[0]; got != "10.0.0.9" {
		t.Errorf("edited document: address %q", got)
	}
	// Reused objects agree with a fresh parse, line for line.
	fresh, _ := ParseYAML("eps.yaml", []byte(v2))
	for i := range fresh {
		if fresh[i].Source() != second[i].Source() {
			t.Errorf("object %d: source %+v, fresh parse says %+v", i, second[i].Source(), fresh[i].Source())
		}
	}

	// A comment line on top moves every document: none may keep its old line.
	shifted := "# moved\n" + v2
	third, err := ParseYAMLReusing("eps.yaml", []byte(shifted), second)
	if err != nil || len(third) != 3 {
		t.Fatalf("shifted: %d objects, %v", len(third), err)
	}
	for i, o := range third {
		if o == second[i] {
			t.Errorf("object %d reused although its lines moved", i)
		}
		if want := second[i].Line + 1; o.Line != want {
			t.Errorf("object %d: line %d, want %d", i, o.Line, want)
		}
	}

	// Another file's objects are never taken, and errors are still reported.
	bad := doc("a", "10.0.0.1") + "---\nkind: [\n"
	objs, err := ParseYAMLReusing("other.yaml", []byte(bad), first)
	if err == nil || !strings.Contains(err.Error(), "other.yaml:") {
		t.Fatalf("want an error naming other.yaml, got %v", err)
	}
	if len(objs) != 1 || objs[0] == first[0] || objs[0].File != "other.yaml" {
		t.Errorf("objects of other.yaml: %+v", objs)
	}
}
