package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrBadResult is a policy result that is neither a boolean nor a decision
// object of the documented shape; it is answered with a deny.
var ErrBadResult = errors.New("authz: bad policy result")

// Header is one header to add or set.
type Header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Decision is what a policy decided for one request.
type Decision struct {
	Allowed bool `json:"allowed"`
	// Status is the HTTP status of a deny (403 unless the policy says).
	Status                  int            `json:"http_status,omitempty"`
	Body                    string         `json:"body,omitempty"`
	Headers                 []Header       `json:"headers,omitempty"`
	ResponseHeadersToAdd    []Header       `json:"response_headers_to_add,omitempty"`
	RequestHeadersToRemove  []string       `json:"request_headers_to_remove,omitempty"`
	QueryParametersToSet    []Header       `json:"query_parameters_to_set,omitempty"`
	QueryParametersToRemove []string       `json:"query_parameters_to_remove,omitempty"`
	DynamicMetadata         map[string]any `json:"dynamic_metadata,omitempty"`
	// Reason explains a deny that Rosen decided (bad input, policy error).
	Reason string `json:"reason,omitempty"`
}

// resultKeys are the fields of a decision object (OPA-Envoy's names, plus
// status_code as an alias of http_status).
var resultKeys = map[string]bool{
	"allowed": true, "headers": true, "response_headers_to_add": true,
	"request_headers_to_remove": true, "query_parameters_to_set": true,
	"query_parameters_to_remove": true, "http_status": true, "status_code": true,
	"body": true, "dynamic_metadata": true,
}

// DecodeResult reads a policy result: a boolean, or an object with
// "allowed" (required, boolean) and the optional response fields.
func DecodeResult(v any) (Decision, error) {
	switch r := v.(type) {
	case bool:
		return Decision{Allowed: r, Status: statusFor(r, 0)}, nil
	case map[string]any:
		return decodeObject(r)
	case nil:
		return Decision{}, fmt.Errorf("%w: undefined (no rule produced a value)", ErrBadResult)
	}
	return Decision{}, fmt.Errorf("%w: %T, want a boolean or an object", ErrBadResult, v)
}

func decodeObject(r map[string]any) (Decision, error) {
	var d Decision
	for k := range r {
		if !resultKeys[k] {
			return d, fmt.Errorf("%w: unknown field %q", ErrBadResult, k)
		}
	}
	allowed, ok := r["allowed"].(bool)
	if !ok {
		return d, fmt.Errorf("%w: \"allowed\" must be a boolean", ErrBadResult)
	}
	d.Allowed = allowed
	var err error
	status := r["http_status"]
	if status == nil {
		status = r["status_code"]
	}
	code := 0
	if status != nil {
		if code, err = intOf(status); err != nil || code < 100 || code > 599 {
			return d, fmt.Errorf("%w: http_status %v is not an HTTP status", ErrBadResult, status)
		}
	}
	if !allowed && code != 0 && code < 200 {
		// Envoy cannot send a 1xx as a final local reply.
		return d, fmt.Errorf("%w: http_status %v is not a final HTTP status for a deny", ErrBadResult, status)
	}
	d.Status = statusFor(allowed, code)
	if b, ok := r["body"]; ok {
		s, ok := b.(string)
		if !ok {
			return d, fmt.Errorf("%w: body must be a string", ErrBadResult)
		}
		if !utf8.ValidString(s) {
			return d, fmt.Errorf("%w: body is not valid UTF-8", ErrBadResult)
		}
		d.Body = s
	}
	if d.Headers, err = headerList(r["headers"], "headers"); err != nil {
		return d, err
	}
	if d.ResponseHeadersToAdd, err = headerList(r["response_headers_to_add"], "response_headers_to_add"); err != nil {
		return d, err
	}
	if d.QueryParametersToSet, err = headerList(r["query_parameters_to_set"], "query_parameters_to_set"); err != nil {
		return d, err
	}
	if d.RequestHeadersToRemove, err = stringList(r["request_headers_to_remove"], "request_headers_to_remove"); err != nil {
		return d, err
	}
	if d.QueryParametersToRemove, err = stringList(r["query_parameters_to_remove"], "query_parameters_to_remove"); err != nil {
		return d, err
	}
	if md, ok := r["dynamic_metadata"]; ok {
		m, ok := md.(map[string]any)
		if !ok {
			return d, fmt.Errorf("%w: dynamic_metadata must be an object", ErrBadResult)
		}
		d.DynamicMetadata = m
	}
	return d, nil
}

func statusFor(allowed bool, code int) int {
	switch {
	case code != 0:
		return code
	case allowed:
		return http.StatusOK
	}
	return http.StatusForbidden
}

func intOf(v any) (int, error) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return int(i), err
	case float64:
		if n != float64(int(n)) {
			return 0, fmt.Errorf("not an integer")
		}
		return int(n), nil
	case int:
		return n, nil
	case int64:
		return int(n), nil
	}
	return 0, fmt.Errorf("not a number")
}

// headerList accepts an object {name: value | [values]} (OPA-Envoy's form)
// or a list of such objects; the result is sorted for stable responses.
func headerList(v any, field string) ([]Header, error) {
	isHeader := field != "query_parameters_to_set"
	if v == nil {
		return nil, nil
	}
	var objs []map[string]any
	switch t := v.(type) {
	case map[string]any:
		objs = []map[string]any{t}
	case []any:
		for _, e := range t {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: %s entries must be objects", ErrBadResult, field)
			}
			objs = append(objs, m)
		}
	default:
		return nil, fmt.Errorf("%w: %s must be an object or a list of objects", ErrBadResult, field)
	}
	var out []Header
	for _, m := range objs {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := checkName(field, k, isHeader); err != nil {
				return nil, err
			}
			switch val := m[k].(type) {
			case string:
				if err := checkValue(field, k, val); err != nil {
					return nil, err
				}
				out = append(out, Header{k, val})
			case []any:
				for _, e := range val {
					s, ok := e.(string)
					if !ok {
						return nil, fmt.Errorf("%w: %s[%q] values must be strings", ErrBadResult, field, k)
					}
					if err := checkValue(field, k, s); err != nil {
						return nil, err
					}
					out = append(out, Header{k, s})
				}
			default:
				return nil, fmt.Errorf("%w: %s[%q] must be a string or a list of strings", ErrBadResult, field, k)
			}
		}
	}
	return out, nil
}

func stringList(v any, field string) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s must be a list of strings", ErrBadResult, field)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%w: %s must be a list of strings", ErrBadResult, field)
		}
		if err := checkName(field, s, field == "request_headers_to_remove"); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// checkName refuses a header name (isHeader) that is not an HTTP token
// (a leading ':' allowed for pseudo-headers), or a query parameter name that
// is empty, is not UTF-8 or holds a control character: Envoy would put it on
// the wire as is (CR/LF splits the request), and a string that is not UTF-8
// cannot even be marshalled into the response, which fails the whole Check
// with a gRPC error that failure_mode_allow turns into an allow.
func checkName(field, name string, isHeader bool) error {
	bad := name == ""
	if isHeader {
		for i := 0; i < len(name) && !bad; i++ {
			bad = !isTokenChar(name[i]) && !(i == 0 && name[i] == ':' && len(name) > 1)
		}
	} else {
		bad = bad || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl)
	}
	if bad {
		return fmt.Errorf("%w: %s: %q is not a valid name", ErrBadResult, field, name)
	}
	return nil
}

// checkValue refuses a value that is not UTF-8 or holds NUL, CR or LF
// (Envoy's own rule for header values).
func checkValue(field, name, v string) error {
	if !utf8.ValidString(v) || strings.ContainsAny(v, "\x00\r\n") {
		if len(v) > 64 {
			v = v[:64] + "…"
		}
		return fmt.Errorf("%w: %s[%q]: value %q holds NUL, CR, LF or bytes that are not UTF-8", ErrBadResult, field, name, v)
	}
	return nil
}

// isTokenChar is RFC 9110's tchar.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
