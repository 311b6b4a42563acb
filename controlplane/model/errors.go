package model

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is a problem with one field of one resource. Its message names the
// file, the resource and the field, so an operator can go straight to it.
type FieldError struct {
	Source Source `json:"source"`
	// Field is a path in the resource, e.g. "spec.http[0].match[1].uri.regex".
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Source.File != "" {
		b.WriteString(e.Source.File)
		b.WriteString(": ")
	}
	if e.Source.Kind != "" || e.Source.Name != "" {
		fmt.Fprintf(&b, "%s %s/%s: ", e.Source.Kind, e.Source.Namespace, e.Source.Name)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errorf builds a FieldError.
func Errorf(src Source, field, format string, args ...any) *FieldError {
	return &FieldError{Source: src, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Errors is a list of problems found in one pass; a config with any is rejected whole.
type Errors []error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Err returns nil for an empty list, so callers can `return errs.Err()`.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// AsFieldErrors flattens an error tree into FieldErrors (others become
// FieldErrors with only a message), for JSON status endpoints.
func AsFieldErrors(err error) []*FieldError {
	if err == nil {
		return nil
	}
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		var es Errors
		if errors.As(e, &es) && len(es) > 0 {
			for _, x := range es {
				walk(x)
			}
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var fe *FieldError
		if errors.As(e, &fe) {
			out = append(out, fe)
			return
		}
		out = append(out, &FieldError{Message: e.Error()})
	}
	walk(err)
	return out
}
