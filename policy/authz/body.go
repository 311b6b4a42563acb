package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strings"
)

const defaultMaxBody = 1 << 20

// parsedBody is OPA-Envoy's parsed_body: JSON bodies as JSON, form bodies as
// a map of value lists, multipart bodies as a map of the parts' values. A
// truncated body is not parsed (parsed_body null, truncated_body true).
func parsedBody(headers map[string]string, body string, raw []byte, opts InputOptions) (any, bool, error) {
	if body == "" && len(raw) > 0 {
		body = string(raw)
	}
	if body == "" {
		return nil, false, nil
	}
	max := opts.MaxBodyBytes
	if max <= 0 {
		max = defaultMaxBody
	}
	trunc, err := truncated(headers, len(body), max)
	if err != nil || trunc {
		return nil, trunc, err
	}
	ct := headers["content-type"]
	if ct == "" {
		return nil, false, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, false, fmt.Errorf("%w: content-type %q: %w", ErrBadInput, ct, err)
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		dec := json.NewDecoder(strings.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, false, fmt.Errorf("%w: JSON body: %w", ErrBadInput, err)
		}
		if dec.More() {
			return nil, false, fmt.Errorf("%w: JSON body: data after the first value", ErrBadInput)
		}
		return v, false, nil
	case mt == "application/x-www-form-urlencoded":
		m, err := parsedQuery(body)
		return m, false, err
	case mt == "multipart/form-data":
		m, err := multipartBody(body, params["boundary"])
		return m, false, err
	}
	return nil, false, nil
}

func multipartBody(body, boundary string) (map[string]any, error) {
	if boundary == "" {
		return nil, fmt.Errorf("%w: multipart body without boundary", ErrBadInput)
	}
	r := multipart.NewReader(strings.NewReader(body), boundary)
	out := map[string]any{}
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: multipart body: %w", ErrBadInput, err)
		}
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, p); err != nil {
			return nil, fmt.Errorf("%w: multipart part %q: %w", ErrBadInput, p.FormName(), err)
		}
		name := p.FormName()
		list, _ := out[name].([]any)
		out[name] = append(list, buf.String())
	}
}
