package xds

import (
	"bytes"
	"fmt"
	"hash/maphash"
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
// of EDS clusters for a gateway) and usually nothing changed, so decoding
// only hashes the encoded names as they lie, in order (run): a request
// whose run equals the stream's last one holds the same names. Only when it
// differs are the names hashed one by one into a subscription key (subKey,
// independent of order), and only when that key is new are they read out
// as strings.
//
// The codec of ServerOptions decodes it where grpc received it, in pieces
// (one per HTTP/2 frame), without copying; it is also a legacy proto
// message (Unmarshal, Reset, String, ProtoMessage), so grpc's own codec
// decodes it through Unmarshal.
type sotwReq struct {
	req   discoveryv3.DiscoveryRequest // every field but resource_names
	msg   [][]byte                     // the encoded request, in pieces
	count int                          // resource names, "*" included
	star  bool                         // "*" is among them
	run   nameRun                      // the encoded names in order
	bufs  mem.BufferSlice              // grpc's buffers msg lives in, referenced until release
}

// nameRun identifies the resource names of a request as encoded, in order.
// Two requests with equal runs carry the same list of names; different
// runs may still carry the same set (another order), which subKey sees.
type nameRun struct {
	sum   uint64
	bytes int
	count int
}

// release hands grpc's buffers back once the request was handled; msg is
// not valid afterwards. Safe to call more than once.
func (r *sotwReq) release() {
	if r.bufs != nil {
		r.bufs.Free()
		r.bufs, r.msg = nil, nil
	}
}

// Unmarshal decodes b, which it does not keep (grpc's proto codec).
func (r *sotwReq) Unmarshal(b []byte) error { return r.decode([][]byte{bytes.Clone(b)}) }

// decode decodes msg, which it keeps. The names are neither checked nor
// hashed one by one: names() checks them when they are needed, and subKey
// hashes them when the run differs from the stream's last one. The hash of
// the run covers the name fields as encoded (tags and lengths included),
// whatever pieces they came in.
func (r *sotwReq) decode(msg [][]byte) error {
	r.msg = msg
	var rest []byte
	var h maphash.Hash
	h.SetSeed(subSeed)
	c := pieces{b: msg}
	var from, to pos // the name fields read since the last other field
	flush := func() {
		if to.n > from.n {
			c.copyRange(from, to, func(b []byte) { _, _ = h.Write(b) })
		}
		from = to
	}
	for !c.end() {
		start := c.at
		if n, count, star := scanNames(c.b[c.at.p][c.at.off:]); n > 0 {
			// The usual case, read without a call per name.
			if to.n != start.n {
				flush()
				from = start
			}
			c.at.off += n
			c.at.n += n
			to = c.at
			r.count += count
			r.star = r.star || star
			r.run.bytes += n
			continue
		}
		num, typ, size, err := c.field()
		if err != nil {
			return fmt.Errorf("xds: malformed request: %w", err)
		}
		if num == resourceNamesField && typ == protowire.BytesType {
			r.count++
			if size == 1 && !c.end() && c.b[c.at.p][c.at.off] == '*' {
				r.star = true
			}
			if err := c.skip(size, nil); err != nil {
				return fmt.Errorf("xds: malformed request: %w", err)
			}
			if to.n != start.n {
				flush()
				from = start
			}
			to = c.at
			r.run.bytes += c.at.n - start.n
			continue
		}
		if err := c.skipValue(typ, size); err != nil {
			return fmt.Errorf("xds: malformed request: %w", err)
		}
		c.copyRange(start, c.at, func(b []byte) { rest = append(rest, b...) })
	}
	flush()
	r.run.sum = h.Sum64()
	r.run.count = r.count
	return proto.Unmarshal(rest, &r.req)
}

// nameTag is the tag of a resource name (field 3, length-delimited) as
// one byte.
var nameTag = byte(protowire.EncodeTag(resourceNamesField, protowire.BytesType))

// scanNames reads the resource name fields at the start of b that are
// shorter than 128 bytes (one-byte lengths) and lie wholly in b: the
// bytes they take, how many, and whether "*" is among them.
func scanNames(b []byte) (n, count int, star bool) {
	for n+1 < len(b) && b[n] == nameTag {
		l := int(b[n+1])
		if l >= 0x80 || n+2+l > len(b) {
			break
		}
		if l == 1 && b[n+2] == '*' {
			star = true
		}
		n += 2 + l
		count++
	}
	return n, count, star
}

// eachName calls fn with every resource name as encoded (valid only during
// the call). msg was decoded without error.
func (r *sotwReq) eachName(fn func(name []byte) error) error {
	c := pieces{b: r.msg}
	for !c.end() {
		num, typ, size, _ := c.field()
		if num != resourceNamesField || typ != protowire.BytesType {
			_ = c.skipValue(typ, size)
			continue
		}
		name, _ := c.value(size)
		if err := fn(name); err != nil {
			return err
		}
	}
	return nil
}

// subKey is the key of the request's names. legacy says an empty list
// still means everything (no name was ever sent on the stream for the type).
func (r *sotwReq) subKey(legacy bool) subKey {
	var k subKey
	_ = r.eachName(func(name []byte) error {
		if string(name) != wildcardName {
			k.addBytes(name)
		}
		return nil
	})
	k.wildcard = r.star || (legacy && r.count == 0)
	return k
}

// names reads the resource names out of the encoded request.
func (r *sotwReq) names() ([]string, error) {
	out := make([]string, 0, r.count)
	err := r.eachName(func(name []byte) error {
		if !utf8.Valid(name) {
			return errBadName
		}
		out = append(out, string(name))
		return nil
	})
	return out, err
}

func (r *sotwReq) Reset()         { *r = sotwReq{} }
func (r *sotwReq) String() string { return fmt.Sprintf("%v (%d resource names)", &r.req, r.count) }
func (r *sotwReq) ProtoMessage()  {}
