// Package jsontext writes and reads the JSON strings of the coordinator's
// hot paths byte for byte as encoding/json does, without its reflection.
package jsontext

import (
	"encoding/json"
	"unicode/utf8"
)

// AppendString appends s as a JSON string, exactly as encoding/json writes it.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			raw, _ := json.Marshal(s)
			return append(b, raw...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// PlainString reads a JSON string without escapes, control or non-ASCII
// bytes (what a decoder would copy unchanged) at the start of b, and
// returns it with the rest of b; ok is false for any other string, which
// the caller then leaves to encoding/json.
func PlainString(b []byte) (s string, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return string(b[1:i]), b[i+1:], true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return "", nil, false
		}
	}
	return "", nil, false
}

// Depth is how deeply the JSON text b nests arrays and objects (0 for a
// scalar or empty text). It counts brackets outside strings and does not
// validate; run it on text known to be valid JSON.
func Depth(b []byte) int {
	depth, max, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++ // skip the escaped byte (a quote or backslash among them)
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > max {
				max = depth
			}
		case ']', '}':
			depth--
		}
	}
	return max
}
