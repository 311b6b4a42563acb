package xds

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

// errTruncated is a field that runs past the end of the message.
var errTruncated = errors.New("truncated field")

// pieces reads protobuf fields from a message as grpc received it: in
// pieces, one per HTTP/2 frame (16 KB), so that an ACK with thousands of
// names is read where it lies instead of being copied into one slice. A
// field may straddle pieces.
type pieces struct {
	b   [][]byte
	at  pos
	buf []byte // scratch for a value that straddles pieces
}

// pos is a place in the message: piece, offset in it, and bytes read
// before it.
type pos struct{ p, off, n int }

// end reports that nothing is left to read.
func (c *pieces) end() bool {
	for c.at.p < len(c.b) && c.at.off == len(c.b[c.at.p]) {
		c.at.p, c.at.off = c.at.p+1, 0
	}
	return c.at.p == len(c.b)
}

// varint reads a varint, from the piece itself when it holds all of it.
func (c *pieces) varint() (uint64, error) {
	if c.end() {
		return 0, errTruncated
	}
	if v, n := protowire.ConsumeVarint(c.b[c.at.p][c.at.off:]); n > 0 {
		c.at.off += n
		c.at.n += n
		return v, nil
	}
	var v uint64
	for s := 0; s < 64; s += 7 {
		if c.end() {
			return 0, errTruncated
		}
		b := c.b[c.at.p][c.at.off]
		if s == 63 && b > 1 {
			// Beyond 64 bits: protobuf refuses it (protowire.ConsumeVarint).
			break
		}
		c.at.off++
		c.at.n++
		v |= uint64(b&0x7f) << s
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("variable length integer overflow")
}

// skip moves n bytes on, handing each contiguous stretch to sink (if any).
func (c *pieces) skip(n uint64, sink func([]byte)) error {
	for n > 0 {
		if c.end() {
			return errTruncated
		}
		chunk := c.b[c.at.p][c.at.off:]
		if uint64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		if sink != nil {
			sink(chunk)
		}
		c.at.off += len(chunk)
		c.at.n += len(chunk)
		n -= uint64(len(chunk))
	}
	return nil
}

// copyRange hands the bytes from one place to a later one (both read
// already) to sink and leaves the reader where it was.
func (c *pieces) copyRange(from, to pos, sink func([]byte)) {
	here := c.at
	c.at = from
	_ = c.skip(uint64(to.n-from.n), sink)
	c.at = here
}

// field reads the next field's tag, and its length when it is
// length-delimited; the reader is then at the field's value.
func (c *pieces) field() (num protowire.Number, typ protowire.Type, size uint64, err error) {
	tag, err := c.varint()
	if err != nil {
		return 0, 0, 0, err
	}
	num, typ = protowire.DecodeTag(tag)
	if num < protowire.MinValidNumber || num > protowire.MaxValidNumber {
		return 0, 0, 0, errors.New("invalid field number")
	}
	if typ == protowire.BytesType {
		size, err = c.varint()
	}
	return num, typ, size, err
}

// skipValue moves past the value of a field of type typ (size as field
// returned it). Groups are refused: no xDS request has one.
func (c *pieces) skipValue(typ protowire.Type, size uint64) error {
	switch typ {
	case protowire.VarintType:
		_, err := c.varint()
		return err
	case protowire.Fixed32Type:
		return c.skip(4, nil)
	case protowire.Fixed64Type:
		return c.skip(8, nil)
	case protowire.BytesType:
		return c.skip(size, nil)
	}
	return errors.New("unsupported wire type")
}

// value returns the next n bytes in one slice: where they lie when one
// piece holds them, else copied into the reader's scratch buffer (valid
// until the next call).
func (c *pieces) value(n uint64) ([]byte, error) {
	if !c.end() && uint64(len(c.b[c.at.p])-c.at.off) >= n {
		v := c.b[c.at.p][c.at.off : c.at.off+int(n)]
		c.at.off += int(n)
		c.at.n += int(n)
		return v, nil
	}
	c.buf = c.buf[:0]
	err := c.skip(n, func(b []byte) { c.buf = append(c.buf, b...) })
	return c.buf, err
}
