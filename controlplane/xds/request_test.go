package xds

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
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

func TestNameRunTellsListsApart(t *testing.T) {
	decode := func(names ...string) *sotwReq {
		t.Helper()
		b, err := proto.Marshal(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNames: names, ResponseNonce: "1"})
		if err != nil {
			t.Fatal(err)
		}
		var r sotwReq
		if err := r.decode([][]byte{b}); err != nil {
			t.Fatal(err)
		}
		return &r
	}
	a := decode(detailsCluster, reviewsCluster)
	if b := decode(detailsCluster, reviewsCluster); a.run != b.run {
		t.Fatal("the same names in the same order: runs differ")
	}
	// Another order: another run, the same set.
	if b := decode(reviewsCluster, detailsCluster); a.run == b.run || a.subKey(false) != b.subKey(false) {
		t.Fatalf("reordered: run equal %v, key equal %v", a.run == b.run, a.subKey(false) == b.subKey(false))
	}
	// One name split in two, or one more name: other runs.
	for _, b := range []*sotwReq{
		decode(detailsCluster + reviewsCluster),
		decode(detailsCluster, reviewsCluster, wildcardName),
		decode(detailsCluster),
		decode(),
	} {
		if a.run == b.run {
			t.Fatalf("%d names: same run as %d", b.count, a.count)
		}
	}
	// Names interleaved with other fields (a foreign encoder) hash as the
	// same list.
	raw := protowire.AppendTag(nil, resourceNamesField, protowire.BytesType)
	raw = protowire.AppendString(raw, detailsCluster)
	raw = protowire.AppendTag(raw, 4, protowire.BytesType) // type_url
	raw = protowire.AppendString(raw, resourcev3.EndpointType)
	raw = protowire.AppendTag(raw, resourceNamesField, protowire.BytesType)
	raw = protowire.AppendString(raw, reviewsCluster)
	var split sotwReq
	if err := split.decode([][]byte{raw}); err != nil {
		t.Fatal(err)
	}
	if split.subKey(false) != a.subKey(false) || split.count != 2 || split.run != a.run {
		t.Fatalf("interleaved names: key %+v, want %+v; run %+v, want %+v", split.subKey(false), a.subKey(false), split.run, a.run)
	}
}

// A request decodes the same whatever pieces grpc received it in (one per
// HTTP/2 frame): a field, a name or a varint may straddle two pieces.
func TestRequestInPiecesDecodesAsWhole(t *testing.T) {
	in := &discoveryv3.DiscoveryRequest{
		VersionInfo: "v1", Node: &corev3.Node{Id: "n", Cluster: "c"}, TypeUrl: resourcev3.EndpointType, ResponseNonce: "7",
		ResourceNames: []string{detailsCluster, wildcardName, reviewsCluster, strings.Repeat("é", 100)},
		ErrorDetail:   &rpcstatus.Status{Code: 3, Message: "bad"},
	}
	b, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var whole sotwReq
	if err := whole.decode([][]byte{b}); err != nil {
		t.Fatal(err)
	}
	wantNames, err := whole.names()
	if err != nil || !reflect.DeepEqual(wantNames, in.ResourceNames) {
		t.Fatalf("names %q, %v", wantNames, err)
	}
	for i := 0; i <= len(b); i++ {
		for j := i; j <= len(b); j += 7 {
			var r sotwReq
			if err := r.decode([][]byte{b[:i], b[i:j], {}, b[j:]}); err != nil {
				t.Fatalf("split at %d, %d: %v", i, j, err)
			}
			if r.run != whole.run || r.count != whole.count || r.star != whole.star || !proto.Equal(&r.req, &whole.req) {
				t.Fatalf("split at %d, %d: run %+v count %d star %v req %v; whole: %+v %d %v %v", i, j, r.run, r.count, r.star, &r.req, whole.run, whole.count, whole.star, &whole.req)
			}
			if got, err := r.names(); err != nil || !reflect.DeepEqual(got, wantNames) {
				t.Fatalf("split at %d, %d: names %q, %v", i, j, got, err)
			}
			if r.subKey(false) != whole.subKey(false) {
				t.Fatalf("split at %d, %d: key differs", i, j)
			}
		}
		// A cut short of the end is refused, or is a shorter valid
		// request (a cut between fields), alike in pieces and whole.
		var r, w sotwReq
		perr := r.decode([][]byte{b[:i/2], b[i/2 : i]})
		werr := w.Unmarshal(b[:i])
		if (perr == nil) != (werr == nil) || (perr == nil && r.run != w.run) {
			t.Fatalf("cut at %d: in pieces %v, whole %v", i, perr, werr)
		}
	}
}

// BenchmarkDecodeEDSAck decodes a gateway's EDS ACK of 3,000 cluster names
// (≈ 150 KB) as grpc hands it over, in 16 KB pieces.
func BenchmarkDecodeEDSAck(b *testing.B) {
	names := make([]string, 3000)
	for i := range names {
		names[i] = fmt.Sprintf("outbound|9080|v%d|svc-%d.default.svc.cluster.local", i%3, i/3)
	}
	raw, err := proto.Marshal(&discoveryv3.DiscoveryRequest{VersionInfo: "42", TypeUrl: resourcev3.EndpointType, ResponseNonce: "17", ResourceNames: names})
	if err != nil {
		b.Fatal(err)
	}
	var msg [][]byte
	for rest := raw; len(rest) > 0; {
		n := min(len(rest), 16384)
		msg, rest = append(msg, rest[:n]), rest[n:]
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var r sotwReq
		if err := r.decode(msg); err != nil || r.count != len(names) {
			b.Fatal(err, r.count)
		}
	}
}

// FuzzSotwRequest: any bytes, cut into any two pieces, decode as they do
// whole and never panic; what protobuf accepts as a DiscoveryRequest with
// valid names gives the same fields and names.
func FuzzSotwRequest(f *testing.F) {
	seed, _ := proto.Marshal(&discoveryv3.DiscoveryRequest{
		VersionInfo: "1", Node: &corev3.Node{Id: "n"}, TypeUrl: resourcev3.EndpointType,
		ResourceNames: []string{detailsCluster, wildcardName, reviewsCluster}, ResponseNonce: "3",
	})
	f.Add(seed, uint16(7))
	f.Add([]byte{0x1a, 0x80}, uint16(1))
	f.Add([]byte{0x9a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 1, 'x'}, uint16(4)) // tag overflowing 64 bits
	f.Fuzz(func(t *testing.T, raw []byte, cut uint16) {
		at := int(cut) % (len(raw) + 1)
		var whole, split sotwReq
		werr := whole.decode([][]byte{raw})
		serr := split.decode([][]byte{raw[:at], raw[at:]})
		if (werr == nil) != (serr == nil) {
			t.Fatalf("whole: %v, in pieces: %v", werr, serr)
		}
		if werr == nil && !wireValid(raw) {
			t.Fatal("accepted bytes that are not protobuf fields")
		}
		if werr != nil {
			return
		}
		if whole.run != split.run || whole.count != split.count || whole.star != split.star {
			t.Fatal("pieces decode differently")
		}
		names, nerr := whole.names()
		var want discoveryv3.DiscoveryRequest
		if err := proto.Unmarshal(raw, &want); err != nil || nerr != nil {
			return // not a valid request (protobuf checks UTF-8 as names does)
		}
		if !reflect.DeepEqual(names, want.ResourceNames) && len(names)+len(want.ResourceNames) > 0 {
			t.Fatalf("names %q, protobuf %q", names, want.ResourceNames)
		}
		want.ResourceNames = nil
		if !proto.Equal(&whole.req, &want) {
			t.Fatalf("fields %v, protobuf %v", &whole.req, &want)
		}
	})
}

// wireValid reports whether b is a sequence of well-formed protobuf fields.
func wireValid(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return false
		}
		b = b[n+m:]
	}
	return true
}
