package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

type fieldProblem struct {
	field string
	msg   string
}

// decodeJSON decodes raw into a generic tree (numbers kept as written), the
// form unknownProtoFields and normalizeDurations walk; ok is false when raw
// is not JSON (protojson then reports it).
func decodeJSON(raw json.RawMessage) (v any, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

// unknownProtoFields walks a decoded JSON value against a message descriptor and
// reports every key that names no field, with its full path
// ("spec.http[0].route[0].destination.hots"). protojson stops at the first
// unknown field and does not say where it is; this walk names all of them.
// Type errors are left to protojson.
func unknownProtoFields(md protoreflect.MessageDescriptor, v any, path string) []fieldProblem {
	var out []fieldProblem
	walkMessage(md, v, path, &out, 0)
	return out
}

// maxDepth bounds the walk on hostile input (protojson has its own limit).
const maxDepth = 100

func walkMessage(md protoreflect.MessageDescriptor, v any, path string, out *[]fieldProblem, depth int) {
	if depth > maxDepth || strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
		return // well-known types have their own JSON forms
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return
	}
	fields := md.Fields()
	for _, k := range sortedKeys(obj) {
		fd := fields.ByJSONName(k)
		if fd == nil {
			fd = fields.ByTextName(k)
		}
		if fd == nil {
			*out = append(*out, fieldProblem{field: path, msg: fmt.Sprintf("unknown field %q", k)})
			continue
		}
		sub := path + "." + k
		val := obj[k]
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.MessageKind {
				continue
			}
			if m, ok := val.(map[string]any); ok {
				for _, mk := range sortedKeys(m) {
					walkMessage(fd.MapValue().Message(), m[mk], fmt.Sprintf("%s[%q]", sub, mk), out, depth+1)
				}
			}
		case fd.IsList():
			if fd.Kind() != protoreflect.MessageKind {
				continue
			}
			if l, ok := val.([]any); ok {
				for i, e := range l {
					walkMessage(fd.Message(), e, fmt.Sprintf("%s[%d]", sub, i), out, depth+1)
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			walkMessage(fd.Message(), val, sub, out, depth+1)
		}
	}
}
