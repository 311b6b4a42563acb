package xds

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field number of `resource_names` in DiscoveryRequest.
const resourceNamesField = 3

// errBadName rejects a request whose resource name is not UTF-8 (proto3
// strings must be).
var errBadName = status.Error(codes.InvalidArgument, "xds: a resource name is not valid UTF-8")

// sotwReq is a DiscoveryRequest decoded without turning its resource names
// into strings. Envoy repeats every subscribed name in each ACK (thousands
// of EDS clusters for a gateway) and usually nothing changed, so the names
// are only hashed into a subscription key; they are read out of raw only
// when that key differs from the stream's subscription.
//
// The codec of ServerOptions decodes it from grpc's buffers with one copy;
// it is also a legacy proto message (Unmarshal, Reset, String,
// ProtoMessage), so grpc's own codec decodes it through Unmarshal.
type sotwReq struct {
	req   discoveryv3.DiscoveryRequest // every field but resource_names
	raw   []byte                       // the encoded request
	count int                          // resource names, "*" included
	star  bool                         // "*" is among them
	key   subKey                       // of the other names
	bufs  mem.BufferSlice              // grpc's buffers raw lives in, referenced until release
}

// release hands grpc's buffers back once the request was handled; raw is
// not valid afterwards. Safe to call more than once.
func (r *sotwReq) release() {
	if r.bufs != nil {
		r.bufs.Free()
		r.bufs, r.raw = nil, nil
	}
}

// Unmarshal decodes b, which it does not keep (grpc's proto codec).
func (r *sotwReq) Unmarshal(b []byte) error { return r.decode(bytes.Clone(b)) }

// decode decodes raw, which it keeps. The names are hashed, not checked:
// names() checks them when they are needed, and a request whose key equals
// the stream's subscription holds the same (checked) names.
func (r *sotwReq) decode(raw []byte) error {
	r.raw = raw
	var rest []byte
	for i := 0; i < len(raw); {
		num, typ, n := protowire.ConsumeTag(raw[i:])
		if n < 0 {
			return fmt.Errorf("xds: malformed request: %w", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, raw[i+n:])
		if m < 0 {
			return fmt.Errorf("xds: malformed request: %w", protowire.ParseError(m))
		}
		if num == resourceNamesField && typ == protowire.BytesType {
			name, _ := protowire.ConsumeBytes(raw[i+n:])
			r.count++
			if string(name) == wildcardName {
				r.star = true
			} else {
				r.key.addBytes(name)
			}
		} else {
			rest = append(rest, raw[i:i+n+m]...)
		}
		i += n + m
	}
	return proto.Unmarshal(rest, &r.req)
}

// subKey is the key of the request's names. legacy says an empty list
// still means everything (no name was ever sent on the stream for the type).
func (r *sotwReq) subKey(legacy bool) subKey {
	k := r.key
	k.wildcard = r.star || (legacy && r.count == 0)
	return k
}

// names reads the resource names out of the encoded request.
func (r *sotwReq) names() ([]string, error) {
	out := make([]string, 0, r.count)
	for i := 0; i < len(r.raw); {
		num, typ, n := protowire.ConsumeTag(r.raw[i:])
		m := protowire.ConsumeFieldValue(num, typ, r.raw[i+n:])
		if num == resourceNamesField && typ == protowire.BytesType {
			name, _ := protowire.ConsumeBytes(r.raw[i+n:])
			if !utf8.Valid(name) {
				return nil, errBadName
			}
			out = append(out, string(name))
		}
		i += n + m
	}
	return out, nil
}

func (r *sotwReq) Reset()         { *r = sotwReq{} }
func (r *sotwReq) String() string { return fmt.Sprintf("%v (%d resource names)", &r.req, r.count) }
func (r *sotwReq) ProtoMessage()  {}
