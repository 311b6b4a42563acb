package authz

import (
	"context"
	"errors"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// grpcClient serves s on a loopback gRPC server, as `rosen serve` does, so
// that the response goes through the real marshalling.
func grpcClient(t *testing.T, s *Server) authv3.AuthorizationClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	s.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return authv3.NewAuthorizationClient(cc)
}

type failingVerifier struct{ err error }

func (f failingVerifier) Verify(context.Context, map[string]string, url.Values) (map[string]any, error) {
	return nil, f.err
}

// TestUnsendableResults: a decision Envoy cannot apply (a header with CR/LF
// or an invalid name, a string that is not UTF-8, a 1xx deny) is a 403 deny
// naming the field. A string that is not UTF-8 used to fail the response's
// marshalling: a gRPC Internal error, which Envoy's failure_mode_allow turns
// into an allow; CR/LF went to Envoy as is.
func TestUnsendableResults(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "p.rego", header+`
allow := {"allowed": false, "http_status": 401, "body": base64.decode("/w==")} if input.canonical_path == "/body"
allow := {"allowed": true, "headers": {"x-echo": input.attributes.request.http.headers["x-raw"]}} if input.canonical_path == "/echo"
allow := {"allowed": true, "headers": {"x-a": "b\r\nset-cookie: evil=1"}} if input.canonical_path == "/crlf"
allow := {"allowed": true, "response_headers_to_add": {"bad name": "v"}} if input.canonical_path == "/name"
allow := {"allowed": true, "query_parameters_to_set": {"q": "a\nb"}} if input.canonical_path == "/query"
allow := {"allowed": true, "request_headers_to_remove": ["x\r\ny"]} if input.canonical_path == "/remove"
allow := {"allowed": false, "http_status": 101} if input.canonical_path == "/101"
allow := {"allowed": true, "headers": {"x-ok": ["a", "b"], ":path": "/x"}, "query_parameters_to_set": {"p q": "ä"}} if input.canonical_path == "/fine"
`)
	s := newTestServer(t, dir, Options{})
	c := grpcClient(t, s)
	rawHeader := func(path string) *authv3.CheckRequest {
		req := checkRequest("GET", path, nil, "")
		req.Attributes.Request.Http.Headers = nil
		req.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: "x-raw", RawValue: []byte("\xff\xfe")}, {Key: ":path", Value: path},
		}}
		return req
	}
	cases := []struct {
		name   string
		req    *authv3.CheckRequest
		status int
		reason string
	}{
		{"body not UTF-8", checkRequest("GET", "/body", nil, ""), 403, "body is not valid UTF-8"},
		{"header echoing raw bytes", rawHeader("/echo"), 403, `headers["x-echo"]`},
		{"CR/LF in a header value", checkRequest("GET", "/crlf", nil, ""), 403, `headers["x-a"]`},
		{"invalid header name", checkRequest("GET", "/name", nil, ""), 403, `response_headers_to_add: "bad name"`},
		{"LF in a query value", checkRequest("GET", "/query", nil, ""), 403, `query_parameters_to_set["q"]`},
		{"CR/LF in a header to remove", checkRequest("GET", "/remove", nil, ""), 403, "request_headers_to_remove"},
		{"1xx deny", checkRequest("GET", "/101", nil, ""), 403, "not a final HTTP status"},
		{"valid mutations", checkRequest("GET", "/fine", nil, ""), 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Check(context.Background(), tc.req)
			if err != nil {
				t.Fatalf("gRPC error (failure_mode_allow would allow): %v", err)
			}
			if got := httpStatus(resp); got != tc.status {
				t.Fatalf("status %d, want %d (%s)", got, tc.status, resp.GetStatus().GetMessage())
			}
			if !strings.Contains(resp.GetStatus().GetMessage(), tc.reason) {
				t.Fatalf("reason %q, want it to name %q", resp.GetStatus().GetMessage(), tc.reason)
			}
		})
	}

	// A reason quoting bytes that are not UTF-8 (from a token verifier here)
	// is still sent, with the bytes replaced.
	s2 := newTestServer(t, dir, Options{Tokens: failingVerifier{errors.New("bad alg \"\xff\"")}})
	resp, err := grpcClient(t, s2).Check(context.Background(), checkRequest("GET", "/fine", nil, ""))
	if err != nil || httpStatus(resp) != 401 || !strings.Contains(resp.GetStatus().GetMessage(), "bad alg \"\uFFFD\"") {
		t.Fatalf("reason not UTF-8: %v %v", resp, err)
	}
}

// TestDecisionLogBounded: the decision ring keeps a bounded prefix of each
// request-supplied string. It kept them whole: 50 checks with a 1 MiB path
// and request id held 151 MB, and a full ring of 4 MiB requests gigabytes.
func TestDecisionLogBounded(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "p.rego", header+"default allow := false\n")
	s := newTestServer(t, dir, Options{})
	long := "/" + strings.Repeat("é", 1<<19) // 1 MiB, cut inside a rune
	req := checkRequest("GET", long, map[string]string{"x-request-id": long}, "")
	req.Attributes.Request.Http.Host = long
	check(t, s, req)
	e := s.Decisions()[0]
	for name, v := range map[string]string{"path": e.Path, "canonical_path": e.CanonicalPath, "request_id": e.RequestID, "host": e.Host} {
		if len(v) > MaxEntryField+32 || !strings.HasSuffix(v, "(1048577 bytes)") || !utf8.ValidString(v) {
			t.Fatalf("%s kept as %d bytes: %q", name, len(v), v[len(v)-32:])
		}
	}
}

// TestNamedPipeInPolicyFolder: a named pipe in the policy folder is an error
// naming it, and the policy in force stays. The loader used to open it and
// block for ever, and with it every later reload of the folder.
func TestNamedPipeInPolicyFolder(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "p.rego", header+"default allow := true\n")
	s := newTestServer(t, dir, Options{})
	v1 := s.Policy().Version
	fifo := filepath.Join(dir, "q.rego")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err) // Linux, where CI runs: a skip would hide the test
	}
	done := make(chan error, 1)
	go func() { done <- s.Reload(context.Background(), dir, "") }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrCompile) || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("reload with a named pipe: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reload blocked on the named pipe")
	}
	if s.Policy().Version != v1 {
		t.Fatal("the policy in force changed")
	}
}
