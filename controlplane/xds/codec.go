package xds

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field number of `nonce` in DiscoveryResponse and DeltaDiscoveryResponse.
const nonceField = 5

// wire is a response whose body (every field but the nonce) is marshalled
// once and shared by every stream that sends the same thing: protobuf
// fields may come in any order, so the message on the wire is the shared
// body followed by the stream's own nonce field. grpc writes both from
// where they are, so a push to N streams holds one copy of the body, not N.
//
// A server built without ServerOptions marshals a wire with grpc's own
// codec, which sees a legacy message (the methods below) and copies it.
type wire struct {
	body  []byte
	nonce string
}

func (w *wire) appendNonce(b []byte) []byte {
	b = protowire.AppendTag(b, nonceField, protowire.BytesType)
	return protowire.AppendString(b, w.nonce)
}

// Marshal, Reset, String and ProtoMessage make a wire a legacy proto message.
func (w *wire) Marshal() ([]byte, error) {
	return w.appendNonce(append(make([]byte, 0, len(w.body)+len(w.nonce)+8), w.body...)), nil
}
func (w *wire) Reset() { *w = wire{} }
func (w *wire) String() string {
	return fmt.Sprintf("xds response (%d bytes, nonce %q)", len(w.body), w.nonce)
}
func (w *wire) ProtoMessage() {}

// codec is grpc's proto codec, except that it sends a *wire without
// copying it and decodes a *sotwReq without copying it, in the pieces it arrived in. ServerOptions installs it on the xDS
// port; every other message goes to the standard codec.
type codec struct{ proto encoding.CodecV2 }

func newCodec() codec { return codec{proto: encoding.GetCodecV2(grpcproto.Name)} }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	w, ok := v.(*wire)
	if !ok {
		return c.proto.Marshal(v)
	}
	return mem.BufferSlice{mem.SliceBuffer(w.body), mem.SliceBuffer(w.appendNonce(nil))}, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*sotwReq); ok {
		// Keep grpc's buffers (referenced until the stream has handled
		// the request) instead of copying every ACK, with its thousands
		// of names, to the heap: the request is read in its pieces.
		data.Ref()
		r.bufs = data
		msg := make([][]byte, len(data))
		for i, b := range data {
			msg[i] = b.ReadOnlyData()
		}
		return r.decode(msg)
	}
	return c.proto.Unmarshal(data, v)
}

func (c codec) Name() string { return grpcproto.Name }

// marshalBody marshals a response without its nonce, for a wire.
func marshalBody(m proto.Message) ([]byte, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("xds: marshal response: %w", err)
	}
	return b, nil
}
