package config

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

const durationName protoreflect.FullName = "google.protobuf.Duration"

// normalizeDurations rewrites every google.protobuf.Duration value written the
// way Istio users write them ("5m", "1h30m", "100ms", as in Istio's own docs)
// into protojson's form ("300s"). Values protojson already accepts are left
// alone; a value that is neither is reported with its path.
// v is raw decoded (decodeJSON); it is rewritten in place.
func normalizeDurations(md protoreflect.MessageDescriptor, raw json.RawMessage, v any, path string) (json.RawMessage, []fieldProblem) {
	var problems []fieldProblem
	changed := walkDurations(md, v, path, &problems, 0)
	if !changed || len(problems) > 0 {
		return raw, problems
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw, nil
	}
	return out, nil
}

func walkDurations(md protoreflect.MessageDescriptor, v any, path string, out *[]fieldProblem, depth int) bool {
	obj, ok := v.(map[string]any)
	if !ok || depth > maxDepth {
		return false
	}
	changed := false
	fields := md.Fields()
	for _, k := range sortedKeys(obj) {
		fd := fields.ByJSONName(k)
		if fd == nil {
			fd = fields.ByTextName(k)
		}
		if fd == nil || fd.Kind() != protoreflect.MessageKind {
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
					if walkDurations(fd.MapValue().Message(), m[mk], fmt.Sprintf("%s[%q]", sub, mk), out, depth+1) {
						changed = true
					}
				}
			}
		case fd.IsList():
			if l, ok := val.([]any); ok {
				for i, e := range l {
					if walkDurations(fd.Message(), e, fmt.Sprintf("%s[%d]", sub, i), out, depth+1) {
						changed = true
					}
				}
			}
		case fd.Message().FullName() == durationName:
			s, ok := val.(string)
			if !ok {
				continue // protojson reports the type error
			}
			norm, err := protoDuration(s)
			if err != nil {
				*out = append(*out, fieldProblem{field: sub, msg: err.Error()})
				continue
			}
			if norm != s {
				obj[k] = norm
				changed = true
			}
		default:
			if walkDurations(fd.Message(), val, sub, out, depth+1) {
				changed = true
			}
		}
	}
	return changed
}

// protoDuration turns a Go or protojson duration string into protojson's form.
func protoDuration(s string) (string, error) {
	if strings.HasSuffix(s, "s") {
		if _, err := strconv.ParseFloat(strings.TrimSuffix(s, "s"), 64); err == nil {
			return s, nil // already protojson's "1.5s"
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return "", fmt.Errorf("invalid duration %q (use a number with a unit: 100ms, 5s, 1m, 2h)", s)
	}
	if d < 0 {
		return "", fmt.Errorf("invalid duration %q: negative", s)
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s", nil
}
