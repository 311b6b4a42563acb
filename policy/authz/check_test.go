package authz

import (
	"context"
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
)

// checkRequest builds a CheckRequest shaped as Envoy's ext_authz filter
// sends it (HTTP attributes, lower-case headers unless the case says not).
func checkRequest(method, path string, headers map[string]string, body string) *authv3.CheckRequest {
	h := map[string]string{":authority": "shop.example.com", ":method": method, ":path": path, "x-request-id": "req-1"}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.0.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51234}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "1", Method: method, Path: path, Host: "shop.example.com", Scheme: "http", Protocol: "HTTP/1.1",
			Headers: h, Body: body, Size: int64(len(body)),
		}},
	}}
}

func newTestServer(t *testing.T, dir string, opts Options) *Server {
	t.Helper()
	s := New(opts)
	if err := s.Reload(context.Background(), dir, ""); err != nil {
		t.Fatal(err)
	}
	return s
}

func check(t *testing.T, s *Server, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	resp, err := s.Check(context.Background(), req)
	if err != nil {
		t.Fatalf("Check returned a gRPC error (Envoy's failure_mode_allow could turn it into an allow): %v", err)
	}
	return resp
}

func httpStatus(resp *authv3.CheckResponse) int {
	if resp.GetStatus().GetCode() == int32(code.Code_OK) {
		return http.StatusOK
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode())
}

// TestHostileRequests: each case is a CheckRequest as Envoy sends it and the
// decision written beside it.
func TestHostileRequests(t *testing.T) {
	s := newTestServer(t, "testdata/policy", Options{})
	jsonHdr := map[string]string{"content-type": "application/json"}
	cases := []struct {
		name     string
		req      *authv3.CheckRequest
		status   int
		inReason string
	}{
		{"plain GET", checkRequest("GET", "/people/alice", nil, ""), 200, ""},
		{"encoded slash climbs to /admin", checkRequest("GET", "/people%2F..%2Fadmin", nil, ""), 403, ""},
		{"double-encoded slash stays a segment", checkRequest("GET", "/people%252F..%252Fadmin", nil, ""), 200, ""},
		{"dot segments to /admin", checkRequest("GET", "/people/./../admin/users", nil, ""), 403, ""},
		{"backslash climbs to /admin", checkRequest("GET", `/people\..\admin`, nil, ""), 403, ""},
		{"merged slashes to /admin", checkRequest("GET", "//admin", nil, ""), 403, ""},
		{"bare percent", checkRequest("GET", "/people/%", nil, ""), 400, "percent-encoding"},
		{"truncated escape", checkRequest("GET", "/people/%4", nil, ""), 400, "percent-encoding"},
		{"encoded NUL", checkRequest("GET", "/people/%00", nil, ""), 400, "NUL"},
		{"newline in query", checkRequest("GET", "/search?q=%0A", nil, ""), 403, ""},
		{"bad query escape", checkRequest("GET", "/search?q=%zz", nil, ""), 400, "query"},
		{"admin with role", checkRequest("GET", "/admin", map[string]string{"x-role": "admin"}, ""), 200, ""},
		{"mixed-case header name folds", checkRequest("GET", "/admin", map[string]string{"X-Role": "admin"}, ""), 200, ""},
		{"JSON body with escaped slashes", checkRequest("POST", "/docs", jsonHdr, `{"path":"\/docs\/a"}`), 200, ""},
		{"JSON body other path", checkRequest("POST", "/docs", jsonHdr, `{"path":"\/docs\/b"}`), 403, ""},
		{"JSON body malformed", checkRequest("POST", "/docs", jsonHdr, `{"path":`), 400, "JSON body"},
		{"JSON body with trailing data", checkRequest("POST", "/docs", jsonHdr, `{"path":"/docs/a"} {}`), 400, "JSON body"},
		{"body over the limit (partial)", checkRequest("POST", "/docs", map[string]string{
			"content-type": "application/json", "content-length": "100000", "x-envoy-auth-partial-body": "true",
		}, `{"path":"/docs/a"`), 403, ""},
		{"body shorter than content-length", checkRequest("POST", "/docs", map[string]string{
			"content-type": "application/json", "content-length": "100",
		}, `{"path":"/docs/a"}`), 403, ""},
		{"bad content-length", checkRequest("POST", "/docs", map[string]string{
			"content-type": "application/json", "content-length": "ten",
		}, `{"path":"/docs/a"}`), 400, "content-length"},
		{"form body", checkRequest("POST", "/docs", map[string]string{"content-type": "application/x-www-form-urlencoded"}, "path=%2Fdocs%2Fa"), 403, ""},
		{"status_code alias", checkRequest("DELETE", "/teapot", nil, ""), 418, ""},
		{"no attributes", &authv3.CheckRequest{}, 400, "no attributes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := check(t, s, c.req)
			if got := httpStatus(resp); got != c.status {
				t.Fatalf("status %d, want %d (%s)", got, c.status, resp.GetStatus().GetMessage())
			}
			if c.inReason != "" && !strings.Contains(resp.GetStatus().GetMessage(), c.inReason) {
				t.Fatalf("reason %q does not mention %q", resp.GetStatus().GetMessage(), c.inReason)
			}
		})
	}
}

func TestAllowCarriesMutations(t *testing.T) {
	s := newTestServer(t, "testdata/policy", Options{})
	resp := check(t, s, checkRequest("GET", "/people", nil, ""))
	ok := resp.GetOkResponse()
	if len(ok.GetHeaders()) != 1 || ok.GetHeaders()[0].GetHeader().GetKey() != "x-policy" {
		t.Fatalf("headers %v", ok.GetHeaders())
	}
	if len(ok.GetResponseHeadersToAdd()) != 1 || ok.GetHeadersToRemove()[0] != "x-role" {
		t.Fatalf("ok response %v", ok)
	}
	deny := check(t, s, checkRequest("GET", "/admin", nil, ""))
	if deny.GetDeniedResponse().GetBody() != "forbidden by policy" {
		t.Fatalf("deny body %q", deny.GetDeniedResponse().GetBody())
	}
}

func TestInputShape(t *testing.T) {
	in, err := BuildInput(checkRequest("POST", "/a%2Fb/c?x=1&x=2&y=%0A", map[string]string{
		"content-type": "multipart/form-data; boundary=XX",
	}, "--XX\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv1\r\n--XX--\r\n"), InputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pp := in["parsed_path"].([]any)
	if len(pp) != 2 || pp[0] != "a/b" || pp[1] != "c" {
		t.Fatalf("parsed_path %v (OPA-Envoy decodes each segment)", pp)
	}
	if in["canonical_path"] != "/a/b/c" || in["raw_path"] != "/a%2Fb/c?x=1&x=2&y=%0A" {
		t.Fatalf("canonical %v raw %v", in["canonical_path"], in["raw_path"])
	}
	q := in["parsed_query"].(map[string]any)
	if len(q["x"].([]any)) != 2 || q["y"].([]any)[0] != "\n" {
		t.Fatalf("parsed_query %v", q)
	}
	if f := in["parsed_body"].(map[string]any)["f"].([]any); f[0] != "v1" {
		t.Fatalf("parsed_body %v", in["parsed_body"])
	}
	v := in["version"].(map[string]any)
	if v["ext_authz"] != "v3" || v["encoding"] != "protojson" {
		t.Fatalf("version %v", v)
	}
	if httpMap(in)["method"] != "POST" {
		t.Fatalf("attributes.request.http %v", httpMap(in))
	}
}
