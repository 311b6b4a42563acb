package store

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"

	"github.com/rosenmesh/rosen/txn/jsontext"
)

// The JSON columns (actions, policy, headers) are written and read on every
// transaction. These hand-written codecs write exactly what encoding/json
// writes (stored rows and whyNoBranch's comparison stay the same) and read
// that shape directly; anything else read goes through encoding/json.

// marshalAction is json.Marshal(a).
func marshalAction(a Action) []byte {
	b := make([]byte, 0, 16+len(a.URL)+len(a.Method)+base64.StdEncoding.EncodedLen(len(a.Body)))
	b = append(b, `{"url":`...)
	b = jsontext.AppendString(b, a.URL)
	if a.Method != "" {
		b = append(b, `,"method":`...)
		b = jsontext.AppendString(b, a.Method)
	}
	if len(a.Body) > 0 {
		b = append(b, `,"body":"`...)
		b = base64.StdEncoding.AppendEncode(b, a.Body)
		b = append(b, '"')
	}
	return append(b, '}')
}

// unmarshalAction is json.Unmarshal(raw, a) for a zero a.
func unmarshalAction(raw []byte, a *Action) error {
	if fastAction(raw, a) {
		return nil
	}
	*a = Action{}
	return json.Unmarshal(raw, a)
}

func fastAction(raw []byte, a *Action) bool {
	rest, ok := bytes.CutPrefix(raw, []byte(`{"url":`))
	if !ok {
		return false
	}
	if a.URL, rest, ok = jsontext.PlainString(rest); !ok {
		return false
	}
	if r, found := bytes.CutPrefix(rest, []byte(`,"method":`)); found {
		if a.Method, rest, ok = jsontext.PlainString(r); !ok {
			return false
		}
	}
	if r, found := bytes.CutPrefix(rest, []byte(`,"body":`)); found {
		var s string
		if s, rest, ok = jsontext.PlainString(r); !ok {
			return false
		}
		body, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return false
		}
		a.Body = body
	}
	return len(rest) == 1 && rest[0] == '}'
}

// marshalPolicy is json.Marshal(p).
func marshalPolicy(p Policy) []byte {
	b := make([]byte, 0, 64)
	b = append(b, `{"initial":`...)
	b = strconv.AppendInt(b, int64(p.Initial), 10)
	b = append(b, `,"max":`...)
	b = strconv.AppendInt(b, int64(p.Max), 10)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(p.Limit), 10)
	return append(b, '}')
}

// unmarshalPolicy is json.Unmarshal(raw, p) for a zero p.
func unmarshalPolicy(raw []byte, p *Policy) error {
	fields := [3]string{`{"initial":`, `,"max":`, `,"limit":`}
	var v [3]int64
	rest := raw
	for i, f := range fields {
		r, ok := bytes.CutPrefix(rest, []byte(f))
		if !ok {
			return json.Unmarshal(raw, p)
		}
		n := 0
		for n < len(r) && (r[n] == '-' || '0' <= r[n] && r[n] <= '9') {
			n++
		}
		if n == 0 || (r[0] == '0' && n > 1) || (n > 2 && r[0] == '-' && r[1] == '0') {
			return json.Unmarshal(raw, p) // not a number as encoding/json writes it
		}
		x, err := strconv.ParseInt(string(r[:n]), 10, 64)
		if err != nil || (i == 2 && int64(int(x)) != x) {
			return json.Unmarshal(raw, p)
		}
		v[i], rest = x, r[n:]
	}
	if string(rest) != "}" {
		return json.Unmarshal(raw, p)
	}
	p.Initial, p.Max, p.Limit = time.Duration(v[0]), time.Duration(v[1]), int(v[2])
	return nil
}

// marshalHeaders is json.Marshal(h).
func marshalHeaders(h map[string]string) []byte {
	switch {
	case h == nil:
		return []byte("null")
	case len(h) == 0:
		return []byte("{}")
	}
	raw, _ := json.Marshal(h)
	return raw
}

// unmarshalHeaders is json.Unmarshal(raw, h) for a nil *h.
func unmarshalHeaders(raw []byte, h *map[string]string) error {
	switch string(raw) {
	case "null":
		return nil
	case "{}":
		*h = map[string]string{}
		return nil
	}
	return json.Unmarshal(raw, h)
}
