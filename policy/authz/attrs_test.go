package authz

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// protoJSONAttributes is OPA-Envoy's way: the whole CheckRequest through
// protojson and back, then the folded headers put in place.
func protoJSONAttributes(t *testing.T, req *authv3.CheckRequest) any {
	t.Helper()
	bs, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var in map[string]any
	dec := json.NewDecoder(bytes.NewReader(bs))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		t.Fatal(err)
	}
	if h := httpMap(in); h != nil {
		hm := map[string]any{}
		for k, v := range foldHeaders(req.GetAttributes().GetRequest().GetHttp()) {
			hm[k] = v
		}
		h["headers"] = hm
	}
	return in["attributes"]
}

func socket(addr string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// TestAttributesMatchProtoJSON: the input built from the proto getters is
// the same document (same Go values, so the same Rego values) as OPA-Envoy's
// protojson round trip, for requests shaped as Envoy sends them and for the
// rarer fields that take the general path.
func TestAttributesMatchProtoJSON(t *testing.T) {
	payload, _ := structpb.NewStruct(map[string]any{
		"iss": "https://issuer.example.com", "sub": "alice", "aud": []any{"shop", "admin"},
		"exp": 1700000000.0, "ratio": 0.5, "tiny": 1e-7, "huge": 1e21, "neg": -3.0, "zero": 0.0,
		"nested": map[string]any{"role": "ops", "ok": true, "none": nil}, "empty": map[string]any{},
	})
	typed, _ := anypb.New(&corev3.Locality{Region: "eu"})
	full := &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: socket("10.0.0.7", 51234), Principal: "spiffe://cluster.local/ns/a/sa/b",
			Labels: map[string]string{"app": "web"}, Service: "web", Certificate: "-----BEGIN"},
		Destination: &authv3.AttributeContext_Peer{Address: socket("10.0.0.8", 8080)},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC)),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: "123", Method: "POST", Path: "/people%2F..%2Fadmin?q=%0A", Host: "shop.example.com", Scheme: "https",
				Query: "q=%0A", Fragment: "f", Size: 1 << 40, Protocol: "HTTP/2", Body: `{"a":"\/"}`, RawBody: []byte{0, 1, 2, 255},
				Headers: map[string]string{"Authorization": "Bearer x", "authorization": "Bearer y", "content-type": "application/json"},
			},
		},
		ContextExtensions:    map[string]string{"virtual_host": "shop"},
		MetadataContext:      &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.jwt_authn": {Fields: map[string]*structpb.Value{"payload": structpb.NewStructValue(payload)}}}},
		RouteMetadataContext: &corev3.Metadata{TypedFilterMetadata: map[string]*anypb.Any{"x": typed}, FilterMetadata: map[string]*structpb.Struct{"r": {}}},
		TlsSession:           &authv3.AttributeContext_TLSSession{Sni: "shop.example.com"},
	}
	cases := map[string]*authv3.AttributeContext{
		"full":       full,
		"minimal":    {Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/"}}},
		"empty http": {Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{}}},
		"no http":    {Request: &authv3.AttributeContext_Request{Time: timestamppb.New(time.Unix(0, 0))}},
		"odd addresses and times": {
			Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/s"}}}},
			Destination: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Protocol: corev3.SocketAddress_UDP, Address: "::1", PortSpecifier: &corev3.SocketAddress_NamedPort{NamedPort: "dns"}}}}},
			Request: &authv3.AttributeContext_Request{Time: timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 123456, time.UTC)),
				Http: &authv3.AttributeContext_HttpRequest{HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "X-A", RawValue: []byte("1")}}}}},
		},
		"udp socket": {Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Protocol: corev3.SocketAddress_UDP, Address: "1.2.3.4"}}}}},
	}
	for _, nanos := range []int{0, 1, 1000, 1000000, 999999999} {
		cases["time "+time.Duration(nanos).String()] = &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Time: timestamppb.New(time.Unix(1767225600, int64(nanos)))}}
	}
	for name, a := range cases {
		t.Run(name, func(t *testing.T) {
			req := &authv3.CheckRequest{Attributes: a}
			got, err := attributesValue(a, foldHeaders(a.GetRequest().GetHttp()))
			if err != nil {
				t.Fatal(err)
			}
			want := protoJSONAttributes(t, req)
			if !reflect.DeepEqual(any(got), want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(want)
				t.Errorf("attributes differ:\n got %s\nwant %s", gj, wj)
			}
		})
	}
}

// TestMetadataNaNIsBadInput: a number protojson cannot write is a 400, as
// the protojson path made it.
func TestMetadataNaNIsBadInput(t *testing.T) {
	a := &authv3.AttributeContext{MetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		"f": {Fields: map[string]*structpb.Value{"x": structpb.NewNumberValue(nan())}},
	}}}
	if _, err := BuildInput(&authv3.CheckRequest{Attributes: a}, InputOptions{}); err == nil {
		t.Fatal("NaN accepted")
	}
}

func nan() float64 { var z float64; return z / z }

// TestFoldHeadersDeterministic: names differing only in case join in the
// byte order of the original names, whatever the map's iteration order.
func TestFoldHeadersDeterministic(t *testing.T) {
	h := &authv3.AttributeContext_HttpRequest{Headers: map[string]string{"X-Role": "b", "x-role": "c", "X-ROLE": "a", "host": "h"}}
	for i := 0; i < 50; i++ {
		if got := foldHeaders(h); got["x-role"] != "a,b,c" || got["host"] != "h" || len(got) != 2 {
			t.Fatalf("folded %v", got)
		}
	}
}
