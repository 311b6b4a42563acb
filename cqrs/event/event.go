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
	if err := fastjson.ValidateBytes(data); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	p := parsers.Get()
	defer parsers.Put(p)
	root, err := p.ParseBytes(data)
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
		key := string(k)
		switch {
		case strings.EqualFold(key, "id"):
			ev.ID, bad = envelopeString(key, v)
		case strings.EqualFold(key, "type"):
			typ, bad = envelopeString(key, v)
		case strings.EqualFold(key, "event"):
			gravity, bad = envelopeString(key, v)
		case strings.EqualFold(key, "key"):
			switch v.Type() {
			case fastjson.TypeNull:
				ev.Key = ""
			case fastjson.TypeString:
				ev.Key = text(v.GetStringBytes())
			default:
				ev.Key = string(v.MarshalTo(nil))
			}
		case strings.EqualFold(key, "time"):
			var s string
			if s, bad = envelopeString(key, v); bad == nil && v.Type() != fastjson.TypeNull {
				ev.Time, bad = time.Parse(time.RFC3339Nano, s)
				if bad != nil {
					bad = fmt.Errorf("time: %w", bad)
				}
			}
		case strings.EqualFold(key, "payload"):
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
	m, err := value(payload)
	if err != nil {
		return nil, err
	}
	ev.Payload = m.(map[string]any)
	return ev, nil
}

func envelopeString(key string, v *fastjson.Value) (string, error) {
	switch v.Type() {
	case fastjson.TypeNull:
		return "", nil
	case fastjson.TypeString:
		return text(v.GetStringBytes()), nil
	}
	return "", fmt.Errorf("%s must be a string, not %s", key, v.Type())
}

// text copies a string out of the parser's buffer; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func text(b []byte) string {
	if !utf8.Valid(b) {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(b)
}

// value converts a validated fastjson value into encoding/json's shapes
// (map[string]any, []any, string, bool, nil), with numbers as json.Number.
func value(v *fastjson.Value) (any, error) {
	switch v.Type() {
	case fastjson.TypeNull:
		return nil, nil
	case fastjson.TypeTrue:
		return true, nil
	case fastjson.TypeFalse:
		return false, nil
	case fastjson.TypeString:
		return text(v.GetStringBytes()), nil
	case fastjson.TypeNumber:
		return json.Number(v.MarshalTo(nil)), nil
	case fastjson.TypeArray:
		arr, _ := v.Array()
		out := make([]any, len(arr))
		for i, x := range arr {
			var err error
			if out[i], err = value(x); err != nil {
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
			if y, err = value(x); err == nil {
				out[text(k)] = y
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
	m, err := value(v)
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
