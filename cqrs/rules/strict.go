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

	yamlv3 "go.yaml.in/yaml/v3"
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
// not start with '{') into out, rejecting unknown keys, keys given twice in
// one object (encoding/json and YAMLToJSON would keep the last silently:
// {"rules":[…],"rules":[]} loaded no rule) and values of the wrong type,
// each with its path ($.rules[0].mapping[1].primary).
func decodeStrict(file string, data []byte, out any) error {
	trimmed := bytes.TrimSpace(data)
	ext := strings.ToLower(filepath.Ext(file))
	if ext == ".yaml" || ext == ".yml" || (len(trimmed) > 0 && trimmed[0] != '{') {
		var doc yamlv3.Node
		if err := yamlv3.Unmarshal(data, &doc); err != nil {
			return cfgErr(file, "$", fmt.Errorf("%w: %w", ErrSyntax, err))
		}
		if err := yamlDuplicates(file, "$", &doc); err != nil {
			return err
		}
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return cfgErr(file, "$", fmt.Errorf("%w: %w", ErrSyntax, err))
		}
		data = j
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tree, err := jsonTree(file, "$", dec)
	if err != nil {
		return err
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

// jsonTree decodes one JSON value token by token (numbers as json.Number),
// refusing a key that its object already has.
func jsonTree(file, path string, dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, cfgErr(file, "$", fmt.Errorf("%w: %w", ErrSyntax, err))
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, cfgErr(file, "$", fmt.Errorf("%w: %w", ErrSyntax, err))
			}
			k, _ := kt.(string)
			if _, dup := obj[k]; dup {
				return nil, cfgErr(file, path+"."+k, fmt.Errorf("%w %q: the object has it twice (the last one would win)", ErrDuplicateKey, k))
			}
			if obj[k], err = jsonTree(file, path+"."+k, dec); err != nil {
				return nil, err
			}
		}
		_, err = dec.Token() // '}'
		if err != nil {
			return nil, cfgErr(file, "$", fmt.Errorf("%w: %w", ErrSyntax, err))
		}
		return obj, nil
	case '[':
		arr := []any{}
		for i := 0; dec.More(); i++ {
			e, err := jsonTree(file, path+"["+strconv.Itoa(i)+"]", dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, e)
		}
		if _, err := dec.Token(); err != nil { // ']'
			return nil, cfgErr(file, "$", fmt.Errorf("%w: %w", ErrSyntax, err))
		}
		return arr, nil
	}
	return nil, cfgErr(file, "$", fmt.Errorf("%w: unexpected %v", ErrSyntax, d))
}

// yamlDuplicates refuses a mapping key given twice, with its path and lines.
func yamlDuplicates(file, path string, n *yamlv3.Node) error {
	switch n.Kind {
	case yamlv3.DocumentNode:
		for _, c := range n.Content {
			if err := yamlDuplicates(file, path, c); err != nil {
				return err
			}
		}
	case yamlv3.SequenceNode:
		for i, c := range n.Content {
			if err := yamlDuplicates(file, path+"["+strconv.Itoa(i)+"]", c); err != nil {
				return err
			}
		}
	case yamlv3.MappingNode:
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yamlv3.ScalarNode && k.Value != "<<" {
				if line, dup := seen[k.Value]; dup {
					return cfgErr(file, path+"."+k.Value, fmt.Errorf("%w %q: the mapping has it on line %d and again on line %d (the last one would win)", ErrDuplicateKey, k.Value, line, k.Line))
				}
				seen[k.Value] = k.Line
			}
			if err := yamlDuplicates(file, path+"."+k.Value, v); err != nil {
				return err
			}
		}
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
			return typeErr(file, path, v, "an array")
		}
		for i, e := range arr {
			if err := checkKeys(file, path+"["+strconv.Itoa(i)+"]", e, t.Elem()); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return typeErr(file, path, v, "an object")
		}
		for k, e := range obj {
			if err := checkKeys(file, path+"."+k, e, t.Elem()); err != nil {
				return err
			}
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return typeErr(file, path, v, "a boolean")
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return typeErr(file, path, v, "a string")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); !ok || err != nil {
			return typeErr(file, path, v, "an integer")
		}
	}
	return nil
}

// typeErr is a value of the wrong JSON type (a JSON null is left to
// Unmarshal, which ignores it), at its path with every index in it.
func typeErr(file, path string, v any, want string) error {
	if v == nil {
		return nil
	}
	var got string
	switch x := v.(type) {
	case string:
		got = strconv.Quote(x)
	case json.Number:
		got = x.String()
	case bool:
		got = strconv.FormatBool(x)
	case []any:
		got = "an array"
	case map[string]any:
		got = "an object"
	}
	return cfgErr(file, path, fmt.Errorf("%w: %s is not %s", ErrInvalid, got, want))
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
