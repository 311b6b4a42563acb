package authz

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// ErrBadInput marks a CheckRequest that cannot be turned into a policy input;
// the server answers it with a 400 deny naming the reason.
var ErrBadInput = errors.New("authz: bad request")

// versionInfo is OPA-Envoy's input.version for v3 requests.
var versionInfo = map[string]any{"ext_authz": "v3", "encoding": "protojson"}

// InputOptions bound what BuildInput does with bodies.
type InputOptions struct {
	// MaxBodyBytes is the largest body parsed into parsed_body; a longer one
	// is reported as truncated_body and not parsed. 0 means 1 MiB.
	MaxBodyBytes int
}

// BuildInput turns a CheckRequest into the policy input document, shaped as
// the OPA-Envoy plugin builds it so that its Rego runs unchanged: the request
// as protobuf JSON (input.attributes...), parsed_path, parsed_query,
// parsed_body, truncated_body and version. Rosen adds:
//
//   - input.canonical_path: the path percent-decoded once with "%2F" and ".."
//     resolved (CanonicalPath); input.raw_path: the path as Envoy sent it.
//   - header names folded to lower case in attributes.request.http.headers
//     (values of names that differ only in case are joined with ","), so a
//     policy on "authorization" cannot be bypassed by "Authorization".
//
// An error wraps ErrBadInput or ErrBadPath.
func BuildInput(req *authv3.CheckRequest, opts InputOptions) (map[string]any, error) {
	return buildInput(req, foldHeaders(req.GetAttributes().GetRequest().GetHttp()), opts)
}

// buildInput is BuildInput with the folded headers already at hand.
func buildInput(req *authv3.CheckRequest, headers map[string]string, opts InputOptions) (map[string]any, error) {
	if req == nil || req.GetAttributes() == nil {
		return nil, fmt.Errorf("%w: no attributes", ErrBadInput)
	}
	attrs, err := attributesValue(req.GetAttributes(), headers)
	if err != nil {
		return nil, err
	}
	input := make(map[string]any, 10)
	input["attributes"] = attrs
	input["version"] = versionInfo

	httpReq := req.GetAttributes().GetRequest().GetHttp()
	rawPath := httpReq.GetPath()
	path, query := SplitPath(rawPath)
	canon, err := CanonicalPath(path)
	if err != nil {
		return nil, err
	}
	input["raw_path"] = rawPath
	input["canonical_path"] = canon
	input["parsed_path"] = parsedPath(path)
	pq, err := parsedQuery(query)
	if err != nil {
		return nil, err
	}
	input["parsed_query"] = pq

	body, truncated, err := parsedBody(headers, httpReq.GetBody(), httpReq.GetRawBody(), opts)
	if err != nil {
		return nil, err
	}
	input["parsed_body"] = body
	input["truncated_body"] = truncated
	return input, nil
}

// httpMap returns input.attributes.request.http, if present.
func httpMap(input map[string]any) map[string]any {
	a, _ := input["attributes"].(map[string]any)
	r, _ := a["request"].(map[string]any)
	h, _ := r["http"].(map[string]any)
	return h
}

// foldHeaders returns the request headers with lower-cased names, from
// headers or (when Envoy sends encode_raw_headers) header_map. Values of
// names that differ only in case are joined with "," in the byte order of
// the original names, so the result never depends on map iteration.
func foldHeaders(h *authv3.AttributeContext_HttpRequest) map[string]string {
	out := make(map[string]string, len(h.GetHeaders()))
	add := func(k, v string) {
		k = strings.ToLower(k)
		if old, ok := out[k]; ok {
			out[k] = old + "," + v
			return
		}
		out[k] = v
	}
	if hs := h.GetHeaders(); len(hs) > 0 {
		for k := range hs {
			if k != strings.ToLower(k) {
				for _, k := range slices.Sorted(maps.Keys(hs)) {
					add(k, hs[k])
				}
				return out
			}
		}
		for k, v := range hs { // Envoy sends lower-case names: nothing collides
			out[k] = v
		}
		return out
	}
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		v := hv.GetValue()
		if v == "" {
			v = string(hv.GetRawValue())
		}
		add(hv.GetKey(), v)
	}
	return out
}

// parsedPath is OPA-Envoy's parsed_path: the segments of the path, each
// percent-decoded (Go's url semantics; a segment may hold a decoded "/").
func parsedPath(path string) []any {
	segs := strings.Split(strings.TrimLeft(path, "/"), "/")
	out := make([]any, len(segs))
	for i, s := range segs {
		if d, err := url.PathUnescape(s); err == nil {
			out[i] = d
		} else {
			out[i] = s
		}
	}
	return out
}

func parsedQuery(query string) (map[string]any, error) {
	out := map[string]any{}
	if query == "" {
		return out, nil
	}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("%w: query: %w", ErrBadInput, err)
	}
	for k, vs := range vals {
		list := make([]any, len(vs))
		for i, v := range vs {
			list[i] = v
		}
		out[k] = list
	}
	return out, nil
}

// truncated reports whether Envoy sent less body than the request has: it
// marks a partial body with x-envoy-auth-partial-body, and content-length
// says how long the whole one is.
func truncated(headers map[string]string, got int, max int) (bool, error) {
	if headers["x-envoy-auth-partial-body"] == "true" || got > max {
		return true, nil
	}
	cl, ok := headers["content-length"]
	if !ok {
		return false, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64)
	if err != nil || n < 0 {
		return false, fmt.Errorf("%w: content-length %q is not a length", ErrBadInput, cl)
	}
	return n > int64(got), nil
}
