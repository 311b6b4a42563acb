package config

import (
	"encoding/json"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// locateProtoErrors finds where protojson fails in a decoded JSON value of
// message md: protojson names the field ("invalid value for int32 field
// weight") but not where it is. Each key is decoded alone, with protojson
// itself (so its rules are not re-implemented), and a failing message,
// list or map is searched further down, so the report reads
// "spec.http[1].route[0].weight: invalid value for int32 field weight". Only
// run after protojson has failed; nil when nothing failed on its own.
func locateProtoErrors(md protoreflect.MessageDescriptor, v any, path string) []fieldProblem {
	var out []fieldProblem
	locateIn(md, v, path, &out, 0)
	return out
}

// decodesAlone reports protojson's error for the object {key: val} as a
// message of type md.
func decodesAlone(md protoreflect.MessageDescriptor, key string, val any) error {
	b, err := json.Marshal(map[string]any{key: val})
	if err != nil {
		return err
	}
	return protojson.Unmarshal(b, dynamicpb.NewMessage(md))
}

func locateIn(md protoreflect.MessageDescriptor, v any, path string, out *[]fieldProblem, depth int) {
	obj, ok := v.(map[string]any)
	if !ok || depth > maxDepth {
		return
	}
	fields := md.Fields()
	for _, k := range sortedKeys(obj) {
		err := decodesAlone(md, k, obj[k])
		if err == nil {
			continue
		}
		fd := fields.ByJSONName(k)
		if fd == nil {
			fd = fields.ByTextName(k)
		}
		sub := path + "." + k
		before := len(*out)
		if fd != nil {
			locateField(md, fd, k, obj[k], sub, out, depth)
		}
		if len(*out) == before {
			*out = append(*out, fieldProblem{field: sub, msg: cleanProtoError(err)})
		}
	}
}

// locateField searches one failing field's value: list elements and map
// entries one by one, messages key by key.
func locateField(md protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor, key string, val any, sub string, out *[]fieldProblem, depth int) {
	wellKnown := func(d protoreflect.MessageDescriptor) bool {
		return strings.HasPrefix(string(d.FullName()), "google.protobuf.")
	}
	switch {
	case fd.IsList():
		l, ok := val.([]any)
		if !ok {
			return
		}
		for i, e := range l {
			err := decodesAlone(md, key, []any{e})
			if err == nil {
				continue
			}
			at := fmt.Sprintf("%s[%d]", sub, i)
			before := len(*out)
			if fd.Kind() == protoreflect.MessageKind && !wellKnown(fd.Message()) {
				locateIn(fd.Message(), e, at, out, depth+1)
			}
			if len(*out) == before {
				*out = append(*out, fieldProblem{field: at, msg: cleanProtoError(err)})
			}
		}
	case fd.IsMap():
		m, ok := val.(map[string]any)
		if !ok {
			return
		}
		for _, mk := range sortedKeys(m) {
			err := decodesAlone(md, key, map[string]any{mk: m[mk]})
			if err == nil {
				continue
			}
			at := fmt.Sprintf("%s[%q]", sub, mk)
			before := len(*out)
			if fd.MapValue().Kind() == protoreflect.MessageKind && !wellKnown(fd.MapValue().Message()) {
				locateIn(fd.MapValue().Message(), m[mk], at, out, depth+1)
			}
			if len(*out) == before {
				*out = append(*out, fieldProblem{field: at, msg: cleanProtoError(err)})
			}
		}
	case fd.Kind() == protoreflect.MessageKind && !wellKnown(fd.Message()):
		locateIn(fd.Message(), val, sub, out, depth+1)
	}
}
