package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// ConfigError names the file and the JSON path of a configuration error.
type ConfigError struct {
	File string
	Path string
	Err  error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("%s: %s: %v", e.File, e.Path, e.Err) }
func (e *ConfigError) Unwrap() error { return e.Err }

func cfgErr(file, path string, err error) error {
	return &ConfigError{File: file, Path: path, Err: err}
}

// decodeStrict parses JSON or YAML (by extension, or by content when it does
// not start with '{') into out, rejecting unknown keys with their path.
func decodeStrict(file string, data []byte, out any) error {
	trimmed := bytes.TrimSpace(data)
	ext := strings.ToLower(filepath.Ext(file))
	if ext == ".yaml" || ext == ".yml" || (len(trimmed) > 0 && trimmed[0] != '{') {
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return cfgErr(file, "$", fmt.Errorf("%w: %w", ErrSyntax, err))
		}
		data = j
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return cfgErr(file, "$", fmt.Errorf("%w: %w", ErrSyntax, err))
	}
	if err := checkKeys(file, "$", tree, reflect.TypeOf(out).Elem()); err != nil {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return cfgErr(file, "$."+te.Field, fmt.Errorf("%w: %s is not a %s", ErrInvalid, te.Value, te.Type))
		}
		return cfgErr(file, "$", fmt.Errorf("%w: %w", ErrSyntax, err))
	}
	return nil
}

// checkKeys walks the decoded tree beside the Go type and reports the first
// object key that the type does not have.
func checkKeys(file, path string, v any, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			if v == nil {
				return nil
			}
			return cfgErr(file, path, fmt.Errorf("%w: want an object", ErrInvalid))
		}
		fields := map[string]reflect.StructField{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" {
				fields[name] = f
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := fields[k]
			if !ok {
				return cfgErr(file, path+"."+k, fmt.Errorf("%w %q (known: %s)", ErrUnknownKey, k, known(fields)))
			}
			if err := checkKeys(file, path+"."+k, obj[k], f.Type); err != nil {
				return err
			}
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return nil // the type error is reported by Unmarshal
		}
		for i, e := range arr {
			if err := checkKeys(file, path+"["+strconv.Itoa(i)+"]", e, t.Elem()); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for k, e := range obj {
			if err := checkKeys(file, path+"."+k, e, t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}

func known(fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// rulePath is the JSON path of the i-th rule of a rules file; a rule from
// an object (objects.go, index -1) is the object's spec.
func rulePath(i int) string {
	if i < 0 {
		return "spec"
	}
	return "$.rules[" + strconv.Itoa(i) + "]"
}
