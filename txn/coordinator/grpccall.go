package coordinator

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/rosenmesh/rosen/txn/store"
)

// GRPCScheme prefixes a branch action that is a gRPC method:
// grpc://host:port/package.Service/Method (plaintext HTTP/2; the mesh's
// sidecars add mTLS).
const GRPCScheme = "grpc://"

// GRPCEndpoint is a parsed grpc:// action.
type GRPCEndpoint struct {
	Target string // host:port
	Method string // /package.Service/Method, as grpc.ClientConn.Invoke wants it
}

var (
	grpcServiceRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	grpcMethodRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	grpcMDKeyRe   = regexp.MustCompile(`^[a-z0-9_.-]+$`)
)

// ParseGRPCEndpoint checks and splits grpc://host:port/package.Service/Method.
func ParseGRPCEndpoint(raw string) (GRPCEndpoint, error) {
	bad := func(why string) (GRPCEndpoint, error) {
		return GRPCEndpoint{}, fmt.Errorf("%w: gRPC endpoint %q: %s (want grpc://host:port/package.Service/Method)", ErrBadInput, raw, why)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad(err.Error())
	}
	if u.Scheme != "grpc" {
		return bad("scheme must be grpc")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return bad("no user, query or fragment allowed")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return bad("host:port required")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return bad("port must be 1-65535")
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if !strings.HasPrefix(u.Path, "/") || len(parts) != 2 || !grpcServiceRe.MatchString(parts[0]) || !grpcMethodRe.MatchString(parts[1]) {
		return bad("path must be /package.Service/Method")
	}
	return GRPCEndpoint{Target: u.Host, Method: u.Path}, nil
}

// grpcPayload is a branch payload as the google.protobuf.Struct a gRPC
// participant receives: empty, or a JSON object.
func grpcPayload(body []byte) (*structpb.Struct, error) {
	in := &structpb.Struct{}
	if len(strings.TrimSpace(string(body))) == 0 {
		return in, nil
	}
	if err := protojson.Unmarshal(body, in); err != nil {
		return nil, fmt.Errorf("%w: payload of a gRPC action must be a JSON object (sent as google.protobuf.Struct): %v", ErrBadInput, err)
	}
	return in, nil
}

// ClassifyGRPC maps a gRPC answer to a Result, like Classify does for HTTP:
//   - OK is done unless the returned Struct says otherwise, by the same rules as
//     an HTTP 2xx body ("status"/"dtm_result" FAILURE → failed, ONGOING → retry,
//     a non-empty "error" → retry);
//   - FAILED_PRECONDITION is failed for good (HTTP's 409);
//   - every other code (UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED,
//     ABORTED, UNIMPLEMENTED, INTERNAL, …) is retried.
func ClassifyGRPC(err error, out *structpb.Struct) Outcome {
	if err == nil {
		body, mErr := protojson.Marshal(out)
		if mErr != nil {
			return Outcome{Retry, fmt.Sprintf("participant answered OK with an unreadable Struct: %v", mErr)}
		}
		o := Classify(200, body)
		o.Detail = strings.Replace(o.Detail, "2xx", "OK", 1)
		return o
	}
	st := status.Convert(err)
	detail := fmt.Sprintf("participant answered %s: %s", st.Code(), st.Message())
	if st.Code() == codes.FailedPrecondition {
		return Outcome{Failed, detail}
	}
	return Outcome{Retry, detail}
}

// GRPCCaller calls participants' gRPC methods, one client connection per
// target, at most MaxConns kept (least recently used closed first).
type GRPCCaller struct {
	Timeout  time.Duration                                   // per call (default 10s)
	MaxConns int                                             // default 64
	dial     func(context.Context, string) (net.Conn, error) // nil: grpc's own dialer

	mu     sync.Mutex
	conns  map[string]*list.Element // target → element of lru holding *grpcConn
	lru    *list.List               // front = most recently used
	closed bool
}

type grpcConn struct {
	target string
	cc     *grpc.ClientConn
}

// NewGRPCCaller returns a gRPC caller with the given per-call timeout.
func NewGRPCCaller(timeout time.Duration) *GRPCCaller {
	return &GRPCCaller{Timeout: timeout, MaxConns: 64}
}

var errCallerClosed = errors.New("coordinator: gRPC caller closed")

func (c *GRPCCaller) conn(target string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errCallerClosed
	}
	if c.conns == nil {
		c.conns, c.lru = map[string]*list.Element{}, list.New()
	}
	if e, ok := c.conns[target]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*grpcConn).cc, nil
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if c.dial != nil {
		opts = append(opts, grpc.WithContextDialer(c.dial))
	}
	cc, err := grpc.NewClient("passthrough:///"+target, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpc client for %s: %w", target, err)
	}
	c.conns[target] = c.lru.PushFront(&grpcConn{target: target, cc: cc})
	limit := c.MaxConns
	if limit <= 0 {
		limit = 64
	}
	for c.lru.Len() > limit {
		old := c.lru.Remove(c.lru.Back()).(*grpcConn)
		delete(c.conns, old.target)
		_ = old.cc.Close() // a call in flight on it fails and is retried
	}
	return cc, nil
}

// Conns is how many client connections are cached.
func (c *GRPCCaller) Conns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru == nil {
		return 0
	}
	return c.lru.Len()
}

// Close closes every cached connection; later calls are retried outcomes.
func (c *GRPCCaller) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for target, e := range c.conns {
		_ = e.Value.(*grpcConn).cc.Close()
		delete(c.conns, target)
	}
	if c.lru != nil {
		c.lru.Init()
	}
}

// Call implements Caller for grpc:// actions: the payload goes as a
// google.protobuf.Struct, the protocol headers as lower-case metadata.
func (c *GRPCCaller) Call(ctx context.Context, t *store.Txn, b *store.Branch, phase string) Outcome {
	a := actionFor(b, phase)
	if a.URL == "" {
		return Outcome{Result: Done, Detail: "no " + phase + " action"}
	}
	ep, err := ParseGRPCEndpoint(a.URL)
	if err != nil {
		return Outcome{Failed, fmt.Sprintf("bad %s action: %v", phase, err)}
	}
	in, err := grpcPayload(a.Body)
	if err != nil {
		return Outcome{Failed, fmt.Sprintf("bad %s action: %v", phase, err)}
	}
	cc, err := c.conn(ep.Target)
	if err != nil {
		return Outcome{Retry, fmt.Sprintf("%s %s: %v", phase, a.URL, err)}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx = metadata.NewOutgoingContext(ctx, grpcMetadata(t, b, phase))
	out := &structpb.Struct{}
	err = cc.Invoke(ctx, ep.Method, in, out)
	// The server sees the same deadline (grpc-timeout) and may give up a moment
	// before our context does, so its DEADLINE_EXCEEDED counts as no answer too.
	if err != nil && (errors.Is(ctx.Err(), context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded) {
		return Outcome{Retry, fmt.Sprintf("%s %s: no answer within %s (%v)", phase, a.URL, timeout, status.Convert(err).Message())}
	}
	return ClassifyGRPC(err, out)
}

// grpcMetadata is the protocol's headers as gRPC metadata: the transaction's
// custom headers whose lower-cased names are valid metadata keys (and not
// grpc-*), then rosen-txn-id, rosen-branch-id, rosen-txn-phase,
// twist-transaction-id and traceparent.
func grpcMetadata(t *store.Txn, b *store.Branch, phase string) metadata.MD {
	md := metadata.MD{}
	for k, v := range t.Headers {
		k = strings.ToLower(k)
		if grpcMDKeyRe.MatchString(k) && !strings.HasPrefix(k, "grpc-") && k != "te" && k != "user-agent" {
			md.Set(k, v)
		}
	}
	md.Set(strings.ToLower(HeaderTxnID), t.ID)
	md.Set(strings.ToLower(HeaderTwistID), t.ID)
	md.Set(strings.ToLower(HeaderBranchID), b.ID)
	md.Set(strings.ToLower(HeaderPhase), phase)
	md.Set(HeaderTrace, Traceparent(t))
	return md
}
