package translate_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/rosenmesh/rosen/controlplane/config"
	"github.com/rosenmesh/rosen/controlplane/istio"
	"github.com/rosenmesh/rosen/controlplane/model"
	"github.com/rosenmesh/rosen/controlplane/translate"
	"github.com/rosenmesh/rosen/controlplane/validate"
)

// marshalInto appends the deterministic wire form of each message to buf.
func marshalInto[M proto.Message](t *testing.T, buf *bytes.Buffer, ms []M) {
	t.Helper()
	for _, m := range ms {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
}

// marshalAll is every resource but secrets, as bytes to compare.
func marshalAll(t *testing.T, r *translate.Resources) []byte {
	t.Helper()
	var buf bytes.Buffer
	marshalInto(t, &buf, r.Listeners)
	marshalInto(t, &buf, r.Routes)
	marshalInto(t, &buf, r.Clusters)
	marshalInto(t, &buf, r.Endpoints)
	return buf.Bytes()
}

// TestDeterministic translates every golden case repeatedly (map iteration
// order differs between runs) and expects identical bytes.
func TestDeterministic(t *testing.T) {
	cases, _ := filepath.Glob("testdata/in/[^_]*.yaml")
	for _, in := range cases {
		m, p := goldenCase(t, in)
		first, err := translate.Translate(m, p)
		if err != nil {
			t.Fatal(err)
		}
		want := marshalAll(t, first)
		for i := 0; i < 20; i++ {
			r, _ := translate.Translate(m, p)
			if !bytes.Equal(marshalAll(t, r), want) {
				t.Fatalf("%s: run %d differs", in, i)
			}
		}
	}
}

func TestBookinfoSamplesValidate(t *testing.T) {
	dir := "../../../shared/samples/istio-bookinfo"
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Istio samples missing under CI: %v", err)
		}
		t.Skip("samples absent")
	}
	for _, vs := range []string{"virtual-service-reviews-jason-v2-v3.yaml", "virtual-service-reviews-80-20.yaml", "virtual-service-ratings-test-abort.yaml", "virtual-service-all-v1.yaml"} {
		set, err := config.LoadDirs("../istio/testdata/bookinfo-services.yaml", filepath.Join(dir, "bookinfo-gateway.yaml"),
			filepath.Join(dir, "destination-rule-all.yaml"), filepath.Join(dir, vs))
		if err != nil {
			t.Fatalf("%s: %v", vs, err)
		}
		m, err := istio.Build(set)
		if err != nil {
			t.Fatalf("%s: %v", vs, err)
		}
		if err := validate.Mesh(m); err != nil {
			t.Errorf("%s: %v", vs, err)
		}
	}
}

func TestRetryPolicy(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *networking.HTTPRetry
		want string // retry_on|num|codes
	}{
		{"unset is Istio default", nil, translate.DefaultRetryOn + "|2|[]"},
		{"attempts 0 disables", &networking.HTTPRetry{Attempts: 0}, "nil"},
		{"numeric codes", &networking.HTTPRetry{Attempts: 3, RetryOn: "5xx, 503"}, "5xx,retriable-status-codes|3|[503]"},
		{"no retryOn keeps default", &networking.HTTPRetry{Attempts: 1}, translate.DefaultRetryOn + "|1|[]"},
	} {
		got := translate.RetryPolicy(tc.in)
		s := "nil"
		if got != nil {
			s = got.RetryOn + "|" + itoa(got.NumRetries.GetValue()) + "|" + codes(got.RetriableStatusCodes)
		}
		if s != tc.want {
			t.Errorf("%s: got %s want %s", tc.name, s, tc.want)
		}
	}
}

func TestFaultPercentages(t *testing.T) {
	f := translate.Fault(&networking.HTTPFaultInjection{
		Delay: &networking.HTTPFaultInjection_Delay{HttpDelayType: &networking.HTTPFaultInjection_Delay_FixedDelay{FixedDelay: durationpb.New(5e9)}, Percentage: &networking.Percent{Value: 0.1}},
		Abort: &networking.HTTPFaultInjection_Abort{ErrorType: &networking.HTTPFaultInjection_Abort_GrpcStatus{GrpcStatus: "unavailable"}},
	})
	if got := f.Delay.Percentage.Numerator; got != 1000 {
		t.Errorf("delay numerator %d, want 1000 per million", got)
	}
	if got := f.Abort.Percentage.Numerator; got != 1000000 {
		t.Errorf("unset abort percentage %d, want 100%%", got)
	}
	if got := f.Abort.GetGrpcStatus(); got != 14 {
		t.Errorf("grpc status %d, want 14", got)
	}
	if translate.Fault(&networking.HTTPFaultInjection{}) != nil {
		t.Error("empty fault should be nil")
	}
}

func TestHostMatches(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"*", "a.example.com", true},
		{"*.example.com", "a.example.com", true},
		{"a.example.com", "*.example.com", true},
		{"*.example.com", "example.com", false},
		{"a.example.com", "b.example.com", false},
		{"A.example.com", "a.EXAMPLE.com", true},
	} {
		if got := translate.HostMatches(tc.a, tc.b); got != tc.want {
			t.Errorf("HostMatches(%q,%q)=%v", tc.a, tc.b, got)
		}
	}
}

func TestClusterNames(t *testing.T) {
	n := translate.ClusterName("reviews.default.svc.cluster.local", 9080, "")
	if n != "outbound|9080||reviews.default.svc.cluster.local" {
		t.Fatal(n)
	}
	h, p, s, ok := translate.ParseClusterName("outbound|9080|v2|reviews.default.svc.cluster.local")
	if !ok || h != "reviews.default.svc.cluster.local" || p != 9080 || s != "v2" {
		t.Fatal(h, p, s, ok)
	}
	if _, _, _, ok := translate.ParseClusterName("inbound|x"); ok {
		t.Fatal("parsed a non-outbound name")
	}
}

func TestEndpointsOnly(t *testing.T) {
	m := &model.Mesh{Services: []*model.Service{{
		Host: "r.default.svc.cluster.local", Resolution: model.ResolutionStatic,
		Ports: []model.ServicePort{{Number: 80, Name: "http"}},
		Endpoints: []model.Endpoint{
			{Address: "10.0.0.2", Ports: map[string]uint32{"http": 8080}, Labels: map[string]string{"v": "2"}, Locality: model.Locality{Zone: "b"}, Healthy: true, Weight: 3},
			{Address: "10.0.0.1", Labels: map[string]string{"v": "1"}, Locality: model.Locality{Zone: "a"}, Healthy: false},
		},
		Subsets: []model.Subset{{Name: "v2", Labels: map[string]string{"v": "2"}}},
	}}}
	got := translate.Endpoints(m, []string{"outbound|80|v2|r.default.svc.cluster.local", "outbound|80||r.default.svc.cluster.local", "unknown", "outbound|80||r.default.svc.cluster.local"})
	if len(got) != 2 {
		t.Fatalf("got %d assignments", len(got))
	}
	v2, all := got[0], got[1] // "|80|v2|" sorts before "|80||"
	if len(all.Endpoints) != 2 || all.Endpoints[0].Locality.Zone != "a" || all.Endpoints[0].LbEndpoints[0].HealthStatus.String() != "UNHEALTHY" {
		t.Errorf("all: %v", all)
	}
	ep := v2.Endpoints[0].LbEndpoints[0]
	if len(v2.Endpoints) != 1 || ep.GetEndpoint().Address.GetSocketAddress().GetPortValue() != 8080 || v2.Endpoints[0].LoadBalancingWeight.GetValue() != 3 {
		t.Errorf("v2: %v", v2)
	}
}

func itoa(n uint32) string { return string(rune('0' + n)) }

func codes(c []uint32) string {
	s := "["
	for i, x := range c {
		if i > 0 {
			s += " "
		}
		s += string([]byte{byte('0' + x/100), byte('0' + x/10%10), byte('0' + x%10)})
	}
	return s + "]"
}
