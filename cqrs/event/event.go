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
)

// Sentinel errors for bad events; the engine dead-letters them with the reason.
var (
	ErrMalformed = errors.New("event: malformed envelope")
	ErrNoType    = errors.New("event: missing type")
	ErrNoPayload = errors.New("event: payload is not a JSON object")
)

// Event is the envelope every source delivers. Seq is set by the event store
// (the JetStream stream sequence or the Kafka offset) and is what per-key
// watermarks compare; it is not part of the published JSON.
type Event struct {
	ID      string         `json:"id,omitempty"`
	Type    string         `json:"type"`
	Key     string         `json:"key,omitempty"`
	Time    time.Time      `json:"time,omitzero"`
	Payload map[string]any `json:"payload"`
	Seq     uint64         `json:"-"`
}

type wire struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Event   string          `json:"event"` // Gravity's name for type
	Key     json.RawMessage `json:"key"`
	Time    *time.Time      `json:"time"`
	Payload json.RawMessage `json:"payload"`
}

// Decode parses one envelope. "event" is accepted as a synonym of "type";
// key may be a string or a number (kept as its literal text).
func Decode(data []byte) (*Event, error) {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrMalformed)
	}
	ev := &Event{ID: w.ID, Type: w.Type}
	if ev.Type == "" {
		ev.Type = w.Event
	}
	if ev.Type == "" {
		return nil, ErrNoType
	}
	if w.Time != nil {
		ev.Time = *w.Time
	}
	if len(w.Key) > 0 && string(w.Key) != "null" {
		var s string
		if err := json.Unmarshal(w.Key, &s); err == nil {
			ev.Key = s
		} else {
			ev.Key = strings.TrimSpace(string(w.Key))
		}
	}
	p, err := DecodePayload(w.Payload)
	if err != nil {
		return nil, err
	}
	ev.Payload = p
	return ev, nil
}

// DecodePayload decodes a JSON object with exact numbers.
func DecodePayload(raw []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, ErrNoPayload
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, ErrNoPayload
	}
	return m, nil
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
