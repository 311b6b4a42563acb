// Package event holds the CQRS event envelope and decodes payloads exactly:
// numbers stay json.Number (their literal text), so an int64 above 2^53 or a
// decimal such as 0.1 is never rounded through float64 on its way to a sink.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"
)

// Sentinel errors for bad events; the engine dead-letters them with the reason.
var (
	ErrMalformed = errors.New("event: malformed envelope")
	ErrNoType    = errors.New("event: missing type")
	ErrNoPayload = errors.New("event: payload is not a JSON object")
)

// Event is the envelope every source delivers. Seq is set by the event store
// (the JetStream stream sequence or the Kafka offset) and is what per-key
// lane offsets compare; it is not part of the published JSON.
type Event struct {
	ID      string         `json:"id,omitempty"`
	Type    string         `json:"type"`
	Key     string         `json:"key,omitempty"`
	Time    time.Time      `json:"time,omitzero"`
	Payload map[string]any `json:"payload"`
	Seq     uint64         `json:"-"`
}

// parsers are reused: a parse allocates almost nothing but the values kept.
var parsers fastjson.ParserPool

// Decode parses one envelope. "event" is accepted as a synonym of "type";
// key may be a string or a number (kept as its literal text). The JSON is
// validated strictly first (RFC 8259: no NaN, no bad escapes, no trailing
// data), then parsed once; numbers keep their literal text as json.Number.
func Decode(data []byte) (*Event, error) {
	p := parsers.Get()
	defer parsers.Put(p)
	d := Decoder{parser: p, arena: make([]byte, 0, len(data))}
	return d.Decode(data)
}

// Decoder decodes many envelopes (one goroutine at a time) with fewer
// allocations than Decode: its parser is its own, repeated object keys and
// event types are shared, and the text of the strings and numbers of many
// events is copied into one larger buffer (that the values share).
type Decoder struct {
	parser *fastjson.Parser
	arena  []byte            // only ever appended to: the strings made from it stay intact
	names  map[string]string // object keys and event types seen
}

// arenaSize is the least a Decoder's text buffer holds (many events' worth).
const arenaSize = 64 << 10

// maxNames bounds the keys a Decoder remembers.
const maxNames = 4096

// Decode parses one envelope (see the function Decode).
func (d *Decoder) Decode(data []byte) (*Event, error) {
	if err := fastjson.ValidateBytes(data); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if d.parser == nil {
		d.parser = &fastjson.Parser{}
	}
	// Unescaped strings and number literals are never longer than the input.
	if cap(d.arena)-len(d.arena) < len(data) {
		d.arena = make([]byte, 0, max(arenaSize, len(data)))
	}
	root, err := d.parser.ParseBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	obj, err := root.Object()
	if err != nil {
		return nil, fmt.Errorf("%w: the envelope is not a JSON object", ErrMalformed)
	}
	ev := &Event{}
	var typ, gravity string
	var payload *fastjson.Value
	var bad error
	obj.Visit(func(k []byte, v *fastjson.Value) {
		if bad != nil {
			return
		}
		switch {
		case foldEq(k, "id"):
			ev.ID, bad = d.envelopeString("id", v, false)
		case foldEq(k, "type"):
			typ, bad = d.envelopeString("type", v, true)
		case foldEq(k, "event"):
			gravity, bad = d.envelopeString("event", v, true)
		case foldEq(k, "key"):
			switch v.Type() {
			case fastjson.TypeNull:
				ev.Key = ""
			case fastjson.TypeString:
				ev.Key = d.text(v.GetStringBytes())
			default:
				ev.Key = d.literal(v)
			}
		case foldEq(k, "time"):
			var s string
			if s, bad = d.envelopeString("time", v, false); bad == nil && v.Type() != fastjson.TypeNull {
				ev.Time, bad = time.Parse(time.RFC3339Nano, s)
				if bad != nil {
					bad = fmt.Errorf("time: %w", bad)
				}
			}
		case foldEq(k, "payload"):
			payload = v
		}
	})
	if bad != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, bad)
	}
	ev.Type = typ
	if ev.Type == "" {
		ev.Type = gravity
	}
	if ev.Type == "" {
		return nil, ErrNoType
	}
	if payload == nil || payload.Type() != fastjson.TypeObject {
		return nil, ErrNoPayload
	}
	m, err := d.value(payload)
	if err != nil {
		return nil, err
	}
	ev.Payload = m.(map[string]any)
	return ev, nil
}

// foldEq is strings.EqualFold(string(k), lower) for an ASCII lower-case name, without a copy.
func foldEq(k []byte, lower string) bool {
	if len(k) != len(lower) {
		return false
	}
	for i := range k {
		c := k[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func (d *Decoder) envelopeString(key string, v *fastjson.Value, shared bool) (string, error) {
	switch v.Type() {
	case fastjson.TypeNull:
		return "", nil
	case fastjson.TypeString:
		if shared {
			return d.name(v.GetStringBytes()), nil
		}
		return d.text(v.GetStringBytes()), nil
	}
	return "", fmt.Errorf("%s must be a string, not %s", key, v.Type())
}

// text copies a string out of the parser's buffer into the arena; invalid
// UTF-8 becomes U+FFFD, as encoding/json does.
func (d *Decoder) text(b []byte) string {
	if !utf8.Valid(b) {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	if len(b) == 0 {
		return ""
	}
	off := len(d.arena)
	d.arena = append(d.arena, b...)
	return unsafe.String(&d.arena[off], len(b))
}

// literal is a value's JSON text (a number's digits as written), from the arena.
func (d *Decoder) literal(v *fastjson.Value) string {
	off := len(d.arena)
	d.arena = v.MarshalTo(d.arena)
	if len(d.arena) == off {
		return ""
	}
	return unsafe.String(&d.arena[off], len(d.arena)-off)
}

// name is text for strings that repeat (object keys, event types): one copy each.
func (d *Decoder) name(b []byte) string {
	if s, ok := d.names[string(b)]; ok {
		return s
	}
	s := d.text(b)
	if d.names == nil {
		d.names = map[string]string{}
	}
	if len(d.names) < maxNames && utf8.Valid(b) {
		d.names[s] = s
	}
	return s
}

// value converts a validated fastjson value into encoding/json's shapes
// (map[string]any, []any, string, bool, nil), with numbers as json.Number.
func (d *Decoder) value(v *fastjson.Value) (any, error) {
	switch v.Type() {
	case fastjson.TypeNull:
		return nil, nil
	case fastjson.TypeTrue:
		return true, nil
	case fastjson.TypeFalse:
		return false, nil
	case fastjson.TypeString:
		return d.text(v.GetStringBytes()), nil
	case fastjson.TypeNumber:
		return json.Number(d.literal(v)), nil
	case fastjson.TypeArray:
		arr, _ := v.Array()
		out := make([]any, len(arr))
		for i, x := range arr {
			var err error
			if out[i], err = d.value(x); err != nil {
				return nil, err
			}
		}
		return out, nil
	case fastjson.TypeObject:
		o, _ := v.Object()
		out := make(map[string]any, o.Len())
		var err error
		o.Visit(func(k []byte, x *fastjson.Value) {
			if err != nil {
				return
			}
			var y any
			if y, err = d.value(x); err == nil {
				out[d.name(k)] = y
			}
		})
		return out, err
	}
	return nil, fmt.Errorf("%w: unexpected JSON value", ErrMalformed)
}

// DecodePayload decodes a JSON object with exact numbers.
func DecodePayload(raw []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, ErrNoPayload
	}
	if err := fastjson.ValidateBytes(raw); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	if v.Type() != fastjson.TypeObject {
		return nil, ErrNoPayload
	}
	d := Decoder{parser: p, arena: make([]byte, 0, len(raw))}
	m, err := d.value(v)
	if err != nil {
		return nil, err
	}
	return m.(map[string]any), nil
}

// Encode is the wire form of an envelope (what sources publish and exporters emit).
func Encode(ev *Event) ([]byte, error) {
	return json.Marshal(ev)
}

// Lookup walks a dotted path ("order.customer.id") through nested objects.
// found is false when any step is missing; a present JSON null is found with v == nil.
func Lookup(payload map[string]any, path string) (v any, found bool) {
	if strings.IndexByte(path, '.') < 0 {
		v, found = payload[path]
		return v, found
	}
	cur := any(payload)
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = m[part]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}
