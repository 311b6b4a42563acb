package xds

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

func TestRequestIsDecodedWithoutItsNames(t *testing.T) {
	in := &discoveryv3.DiscoveryRequest{
		VersionInfo: "v1", Node: &corev3.Node{Id: "n"}, TypeUrl: resourcev3.EndpointType, ResponseNonce: "7",
		ResourceNames: []string{detailsCluster, wildcardName, reviewsCluster},
		ErrorDetail:   &rpcstatus.Status{Code: 3, Message: "bad"},
	}
	b, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var r sotwReq
	if err := proto.Unmarshal(b, protoadapt.MessageV2Of(&r)); err != nil { // as grpc's codec does
		t.Fatal(err)
	}
	want := proto.Clone(in).(*discoveryv3.DiscoveryRequest)
	want.ResourceNames = nil
	if !proto.Equal(&r.req, want) {
		t.Fatalf("decoded %v, want %v", &r.req, want)
	}
	if got, err := r.names(); err != nil || !reflect.DeepEqual(got, in.ResourceNames) {
		t.Fatalf("names = %v", got)
	}
	if r.count != 3 || !r.star {
		t.Fatalf("count %d star %v", r.count, r.star)
	}
	// The key from the wire is the key of the same names as strings.
	if got, want := r.subKey(false), sotwKey(in.ResourceNames, false); got != want {
		t.Fatalf("key %+v, want %+v", got, want)
	}
	// No names: wildcard only while the stream never sent any (legacy).
	var empty sotwReq
	if err := empty.Unmarshal(nil); err != nil {
		t.Fatal(err)
	}
	if !empty.subKey(true).wildcard || empty.subKey(false).wildcard {
		t.Fatal("legacy wildcard not honoured")
	}
}

func TestMalformedRequestsAreErrors(t *testing.T) {
	badName := protowire.AppendTag(nil, resourceNamesField, protowire.BytesType)
	badName = protowire.AppendBytes(badName, []byte{0xff, 0xfe})
	var r sotwReq
	if err := r.Unmarshal(badName); err != nil {
		t.Fatal(err) // hashed only
	}
	if _, err := r.names(); !errors.Is(err, errBadName) {
		t.Fatalf("invalid UTF-8 name: %v", err)
	}
	truncated := protowire.AppendTag(nil, resourceNamesField, protowire.BytesType)
	truncated = append(truncated, 50, 'x') // says 50 bytes, has 1
	if err := r.Unmarshal(truncated); err == nil {
		t.Fatal("truncated request accepted")
	}
}

// sotwKey is the key of names as strings, what sotwReq computes from the
// wire; legacy as for sotwReq.subKey.
func sotwKey(names []string, legacy bool) subKey {
	k := subKey{wildcard: legacy && len(names) == 0}
	for _, n := range names {
		if n == wildcardName {
			k.wildcard = true
			continue
		}
		k.add(n)
	}
	return k
}

// rawCodec sends []byte as they are (a hostile client's encoder).
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}
func (rawCodec) Name() string { return "proto" }

func TestInvalidUTF8NameEndsTheStream(t *testing.T) {
	e := start(t, Options{})
	if err := e.srv.Update(mesh(bookinfo)); err != nil {
		t.Fatal(err)
	}
	first, err := proto.Marshal(&discoveryv3.DiscoveryRequest{Node: gatewayNode("gw"), TypeUrl: resourcev3.EndpointType})
	if err != nil {
		t.Fatal(err)
	}
	first = protowire.AppendTag(first, resourceNamesField, protowire.BytesType)
	first = protowire.AppendBytes(first, []byte("outbound|9080||\xff"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true},
		"/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources", grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg(first); err != nil {
		t.Fatal(err)
	}
	var out []byte
	wantCode(t, s.RecvMsg(&out), codes.InvalidArgument, "not valid UTF-8")
}
