package istio

import (
	"os"
	"strings"
	"testing"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/model"
)

// build parses the bookinfo services fixture plus in-line YAML (as t.yaml) and builds.
func build(t *testing.T, doc string) (*model.Mesh, error) {
	t.Helper()
	base, err := os.ReadFile("testdata/bookinfo-services.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := config.ParseYAML("services.yaml", base)
	if err != nil {
		t.Fatal(err)
	}
	more, err := config.ParseYAML("t.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	set, errs := config.NewSet(append(objs, more...))
	if len(errs) > 0 {
		t.Fatalf("set: %v", errs)
	}
	return Build(set)
}

const reviewsDR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
`

func vs(http string) string {
	return reviewsDR + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [reviews]
  http:
` + http
}

func TestBuildErrors(t *testing.T) {
	cases := []struct {
		name, doc string
		want      []string
	}{
		{"unknown host", vs(`  - route: [{destination: {host: nope}}]`),
			[]string{`t.yaml:10: VirtualService default/r: spec.http[0].route[0].destination.host: unknown host "nope" (nope.default.svc.cluster.local): no Service or ServiceEntry defines it`}},
		{"dangling subset", vs(`  - route: [{destination: {host: reviews, subset: v9}}]`),
			[]string{`t.yaml:10: VirtualService default/r: spec.http[0].route[0].destination.subset: unknown subset "v9": DestinationRule default/reviews defines [v1, v2]`}},
		{"subset without rule", vs(`  - route: [{destination: {host: ratings, subset: v1}}]`),
			[]string{`t.yaml:10: VirtualService default/r: spec.http[0].route[0].destination.subset: unknown subset "v1": no DestinationRule for host ratings.default.svc.cluster.local`}},
		{"unknown port", vs(`  - route: [{destination: {host: reviews, port: {number: 80}}}]`),
			[]string{`t.yaml:10: VirtualService default/r: spec.http[0].route[0].destination.port.number: service reviews.default.svc.cluster.local has no port 80`}},
		{"weights", vs(`  - route: [{destination: {host: reviews, subset: v1}, weight: 50}, {destination: {host: reviews, subset: v2}, weight: 40}]`),
			[]string{`t.yaml:10: VirtualService default/r: spec.http[0].route: weights sum to 90, want 100`}},
		{"bad regex", vs(`  - match: [{uri: {regex: "/a(b"}}]
    route: [{destination: {host: reviews}}]`),
			[]string{"t.yaml:10: VirtualService default/r: spec.http[0].match[0].uri.regex: invalid RE2 regex: error parsing regexp: missing closing ): `/a(b`"}},
		{"lookahead header regex", vs(`  - match: [{headers: {x-user: {regex: "(?!admin).*"}}}]
    route: [{destination: {host: reviews}}]`),
			[]string{"t.yaml:10: VirtualService default/r: spec.http[0].match[0].headers[\"x-user\"].regex: invalid RE2 regex: error parsing regexp: invalid or unsupported Perl syntax: `(?!`"}},
		{"regex too complex for Envoy", vs(`  - match: [{uri: {regex: "[a-z]{1000}[0-9]{1000}"}}]
    route: [{destination: {host: reviews}}]`),
			[]string{"t.yaml:10: VirtualService default/r: spec.http[0].match[0].uri.regex: regex too complex: program size 2004 exceeds Envoy's limit 100 (re2.max_program_size)"}},
		{"zero timeout", vs(`  - route: [{destination: {host: reviews}}]
    timeout: 0s`),
			[]string{`t.yaml:10: VirtualService default/r: spec.http[0].timeout: duration 0s must be at least 1ms`}},
		{"fault", vs(`  - route: [{destination: {host: reviews}}]
    fault:
      abort: {httpStatus: 700, percentage: {value: 150}}
      delay: {fixedDelay: 1s, percentage: {value: -1}}`),
			[]string{
				`t.yaml:10: VirtualService default/r: spec.http[0].fault.delay.percentage.value: percentage -1 must be between 0 and 100`,
				`t.yaml:10: VirtualService default/r: spec.http[0].fault.abort.percentage.value: percentage 150 must be between 0 and 100`,
				`t.yaml:10: VirtualService default/r: spec.http[0].fault.abort.httpStatus: status 700 must be between 200 and 599`,
			}},
		{"grpc abort", vs(`  - route: [{destination: {host: reviews}}]
    fault: {abort: {grpcStatus: NOPE}}`),
			[]string{`t.yaml:10: VirtualService default/r: spec.http[0].fault.abort.grpcStatus: unknown gRPC status "NOPE" (want a code name such as UNAVAILABLE)`}},
		{"mirror unknown subset", vs(`  - route: [{destination: {host: reviews}}]
    mirror: {host: reviews, subset: v3}
    mirrorPercentage: {value: 101}`),
			[]string{
				`t.yaml:10: VirtualService default/r: spec.http[0].mirrorPercentage.value: percentage 101 must be between 0 and 100`,
				`t.yaml:10: VirtualService default/r: spec.http[0].mirror.subset: unknown subset "v3": DestinationRule default/reviews defines [v1, v2]`,
			}},
		{"pseudo and host header edits", vs(`  - route: [{destination: {host: reviews}, headers: {request: {set: {host: evil}}}}]
    headers:
      request: {set: {":path": /x}, remove: [":authority", "x-ok"]}
      response: {add: {"bad header": v}}`),
			[]string{
				`t.yaml:10: VirtualService default/r: spec.http[0].headers.request.set[":path"]: header ":path" may not be modified (pseudo-headers and Host are not editable; use rewrite.authority for Host)`,
				`t.yaml:10: VirtualService default/r: spec.http[0].headers.request.remove[":authority"]: header ":authority" may not be modified (pseudo-headers and Host are not editable; use rewrite.authority for Host)`,
				`t.yaml:10: VirtualService default/r: spec.http[0].headers.response.add["bad header"]: header name "bad header" is not a valid HTTP token`,
				`t.yaml:10: VirtualService default/r: spec.http[0].route[0].headers.request.set["host"]: header "host" may not be modified (pseudo-headers and Host are not editable; use rewrite.authority for Host)`,
			}},
		{"host names Istio rejects", reviewsDR + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: ["a b.example.com", "foo.*.com", "bücher.example.com", "*a.example.com"]
  http: [{route: [{destination: {host: reviews}}]}]`,
			[]string{
				`t.yaml:10: VirtualService default/r: spec.hosts[0]: host "a b.example.com": label "a b" is not a DNS-1123 label (a wildcard may only prefix the first label)`,
				`t.yaml:10: VirtualService default/r: spec.hosts[1]: host "foo.*.com": label "*" is not a DNS-1123 label (lower-case letters, digits and '-', 1-63 characters)`,
				`t.yaml:10: VirtualService default/r: spec.hosts[2]: host "bücher.example.com": label "bücher" is not a DNS-1123 label (a wildcard may only prefix the first label)`,
			}},
		{"no action", vs(`  - name: empty`),
			[]string{`t.yaml:10: VirtualService default/r: spec.http[0]: one of route, redirect or directResponse is required`}},
		{"unknown gateway", reviewsDR + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [reviews]
  gateways: [mesh, gw]
  http: [{route: [{destination: {host: reviews}}]}]`,
			[]string{`t.yaml:10: VirtualService default/r: spec.gateways[1]: unknown gateway "gw" (no Gateway default/gw)`}},
		{"two rules for one host", reviewsDR + `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews2}
spec: {host: reviews.default.svc.cluster.local}`,
			[]string{`t.yaml:10: DestinationRule default/reviews2: spec.host: host reviews.default.svc.cluster.local already has DestinationRule default/reviews (t.yaml:1); merge them into one`}},
		{"duplicate host", `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [reviews.default.svc.cluster.local]
  ports: [{number: 80, name: http}]
  resolution: DNS`,
			[]string{`t.yaml:1: ServiceEntry default/se: host reviews.default.svc.cluster.local is already defined by Service default/reviews (services.yaml:85)`}},
		{"static endpoint not an IP", `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [db.example.com]
  ports: [{number: 5432, name: tcp}]
  resolution: STATIC
  endpoints: [{address: db.internal, locality: a//c}]`,
			[]string{
				`t.yaml:1: ServiceEntry default/se: spec.endpoints[0].locality: "a//c": empty part (want region/zone/subzone)`,
				`t.yaml:1: ServiceEntry default/se: spec.endpoints[0].address: "db.internal" is not an IP address (resolution STATIC)`,
			}},
		{"https without credential", `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: https}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: missing}
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["a/b/c"]`,
			[]string{
				`t.yaml:1: Gateway default/gw: spec.servers[0].tls.credentialName: no Secret named "missing"`,
				`t.yaml:1: Gateway default/gw: spec.servers[1].hosts[0]: host "a/b/c": want host, namespace/host or */host`,
			}},
		{"follow-on errors name the invalid object", reviewsDR + `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: cert}
---
apiVersion: v1
kind: Secret
metadata: {name: cert}
type: kubernetes.io/tls
data: {tls.crt: Y2VydA==, tls.key: a2V5}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [a.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: reviews}}]`,
			[]string{
				`t.yaml:20: Secret default/cert: data: invalid tls.crt/tls.key pair: tls: failed to find any PEM data in certificate input`,
				`t.yaml:10: Gateway default/gw: spec.servers[0].tls.credentialName: Secret "cert" (t.yaml:20) is invalid; see its own error`,
				`t.yaml:26: VirtualService default/r: spec.gateways[0]: Gateway default/gw (t.yaml:10) is invalid; see its own error`,
			}},
		{"policy", `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  trafficPolicy:
    outlierDetection: {maxEjectionPercent: 120, interval: 0.0005s}
  subsets:
  - {name: v1}
  - {name: v1}`,
			[]string{
				`t.yaml:1: DestinationRule default/ratings: spec.subsets[1].name: duplicate subset "v1"`,
				`t.yaml:1: DestinationRule default/ratings: spec.trafficPolicy.outlierDetection.interval: duration 500µs must be at least 1ms`,
				`t.yaml:1: DestinationRule default/ratings: spec.trafficPolicy.outlierDetection.maxEjectionPercent: percentage 120 must be between 0 and 100`,
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := build(t, c.doc)
			if err == nil {
				t.Fatalf("no error; mesh has %d virtual services", len(m.VirtualServices))
			}
			if m != nil {
				t.Error("mesh returned with errors")
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
