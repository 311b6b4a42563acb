// Package coordinator runs TCC global transactions: it records each change in
// the store before acknowledging it, drives phase two (confirm or cancel every
// branch) with bounded exponential retries, aborts transactions past their
// deadline, and marks a transaction stuck (and alerts) when a branch never
// completes. Any number of coordinators may share one store: due work is
// claimed with a lease.
package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/rosenmesh/rosen/txn/jsontext"
	"github.com/rosenmesh/rosen/txn/store"
)

// Errors of the coordinator (store errors pass through wrapped: store.ErrNotFound, ErrState, …).
var (
	ErrBadInput = errors.New("coordinator: bad input")
	ErrClosed   = errors.New("coordinator: closed")
)

// Options configure a Coordinator. Zero values take the defaults shown.
type Options struct {
	Store    store.Store
	Log      *zap.Logger
	Registry prometheus.Registerer
	Caller   Caller // NewSchemeCaller(CallTimeout): http(s):// and grpc:// actions, dialled through DenyNets
	// DenyNets are networks participants may not be in: a branch whose URL
	// is a literal address in one is refused at registration, and the
	// default caller refuses to connect to one (names are checked after
	// resolution, redirects included). Nil means DefaultDenyNets; an empty,
	// non-nil slice allows every address.
	DenyNets []netip.Prefix
	Owner    string        // this replica's name in leases: host-pid-random
	Lease    time.Duration // 15s: how long a claimed transaction is ours before another replica may take it
	Poll     time.Duration // 200ms: how often due work is claimed
	Batch    int           // 64 transactions claimed per poll
	// CallTimeout bounds one confirm/cancel call (10s); keep it well below Lease.
	CallTimeout    time.Duration
	DefaultTimeout time.Duration // 60s per transaction
	MaxTimeout     time.Duration // 24h
	DefaultPolicy  store.Policy  // 200ms doubling to 1m, 10 attempts
	WebhookURL     string        // optional: POSTed a JSON alert when a transaction gets stuck
	// Retention is how long committed and aborted transactions stay queryable
	// before they are deleted (7 days; negative keeps them for ever). Stuck and
	// active ones are never deleted. After it, the id may be used again.
	Retention time.Duration
	// PurgeEvery is how often finished transactions past Retention are deleted (1m).
	PurgeEvery time.Duration
	Now        func() time.Time
}

// Coordinator runs global transactions.
type Coordinator struct {
	opts   Options
	log    *zap.Logger
	m      *metrics
	alert  *alerter
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	waiters map[string][]chan *store.Txn
	running map[string]bool // transactions with a round in flight here → run once more

	settings atomic.Pointer[Settings] // settings.go: the defaults Begin applies
	guard    netGuard                 // Options.DenyNets
}

// New returns a coordinator; call Run to process due work and Close (or end Run) to stop.
func New(opts Options) (*Coordinator, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("%w: no store", ErrBadInput)
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Lease, 15*time.Second)
	def(&opts.Poll, 200*time.Millisecond)
	def(&opts.CallTimeout, 10*time.Second)
	def(&opts.DefaultTimeout, 60*time.Second)
	def(&opts.MaxTimeout, 24*time.Hour)
	def(&opts.PurgeEvery, time.Minute)
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Batch <= 0 {
		opts.Batch = 64
	}
	if opts.DefaultPolicy == (store.Policy{}) {
		opts.DefaultPolicy = store.Policy{Initial: 200 * time.Millisecond, Max: time.Minute, Limit: 10}
	}
	if err := checkPolicy(opts.DefaultPolicy); err != nil {
		return nil, err
	}
	if opts.DenyNets == nil {
		opts.DenyNets = DefaultDenyNets
	}
	guard := netGuard(opts.DenyNets)
	if opts.Caller == nil {
		opts.Caller = newSchemeCaller(opts.CallTimeout, guard)
	}
	if opts.Owner == "" {
		host, _ := os.Hostname()
		opts.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomHex(4))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WebhookURL != "" {
		if err := checkURL(opts.WebhookURL); err != nil {
			return nil, fmt.Errorf("webhook: %w", err)
		}
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	log := opts.Log.Named("txn")
	c := &Coordinator{opts: opts, guard: guard, log: log, m: m, waiters: map[string][]chan *store.Txn{}, running: map[string]bool{}}
	c.alert = newAlerter(log, m, opts.WebhookURL)
	c.settings.Store(&Settings{DefaultTimeout: opts.DefaultTimeout, MaxTimeout: opts.MaxTimeout, DefaultPolicy: opts.DefaultPolicy, WebhookURL: opts.WebhookURL, Retention: opts.Retention})
	c.base, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Owner is this replica's lease name.
func (c *Coordinator) Owner() string { return c.opts.Owner }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// validID is ^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$ (checked on every request: no regexp).
func validID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == ':' || c == '@' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func checkID(what, id string) error {
	if !validID(id) {
		return fmt.Errorf("%w: %s %q: want 1-128 characters of [A-Za-z0-9._:@-]", ErrBadInput, what, id)
	}
	return nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: url %q: %v", ErrBadInput, raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: url %q: want an absolute http(s) URL", ErrBadInput, raw)
	}
	return nil
}

// checkAction checks a confirm/cancel endpoint: an absolute http(s) URL, or
// grpc://host:port/package.Service/Method with a payload that is empty or a
// JSON object (and no method other than POST).
func checkAction(a store.Action) error {
	if !strings.HasPrefix(strings.ToLower(a.URL), "grpc") {
		if err := checkURL(a.URL); err != nil {
			return fmt.Errorf("%w (or grpc://host:port/package.Service/Method)", err)
		}
		return nil
	}
	if _, err := ParseGRPCEndpoint(a.URL); err != nil {
		return err
	}
	if a.Method != "" && a.Method != http.MethodPost {
		return fmt.Errorf("%w: method %q is meaningless for a gRPC endpoint", ErrBadInput, a.Method)
	}
	if _, err := grpcPayload(a.Body); err != nil {
		return err
	}
	return nil
}

func checkPolicy(p store.Policy) error {
	if p.Initial <= 0 || p.Max < p.Initial || p.Limit < 1 || p.Limit > 10000 {
		return fmt.Errorf("%w: retry policy %+v: want initial > 0, max >= initial, 1 <= limit <= 10000", ErrBadInput, p)
	}
	return nil
}

// BeginRequest starts a global transaction.
type BeginRequest struct {
	ID       string            // generated when empty
	Timeout  time.Duration     // Options.DefaultTimeout when zero
	Policy   *store.Policy     // Options.DefaultPolicy when nil
	Headers  map[string]string // sent with every branch call (and a traceparent to join)
	Branches []store.Branch    // branches known at the start (Twist-style); more with Register
}

var reserved = map[string]bool{
	http.CanonicalHeaderKey(HeaderTxnID): true, http.CanonicalHeaderKey(HeaderBranchID): true,
	http.CanonicalHeaderKey(HeaderPhase): true, http.CanonicalHeaderKey(HeaderTwistID): true,
	"Content-Type": true, "Content-Length": true, "Host": true,
}

// MaxPayloadDepth bounds how deeply a branch payload may nest. A
// transaction's JSON view holds each payload a few levels down, and
// encoding/json refuses documents nested past 10,000 levels, so a payload
// near that limit would be stored and then make the transaction unreadable.
const MaxPayloadDepth = 1000

var headerRe = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_` + "`" + `|~-]{1,100}$`)

// CheckBranch reports what Register would refuse in b before touching the
// store (ErrBadInput): callers registering several branches check them all first.
func (c *Coordinator) CheckBranch(b store.Branch) error { return c.guard.checkBranch(b) }

func (g netGuard) checkBranch(b store.Branch) error {
	if err := checkID("branch id", b.ID); err != nil {
		return err
	}
	if b.Confirm.URL == "" && b.Cancel.URL == "" {
		return fmt.Errorf("%w: branch %s has neither a confirm nor a cancel action", ErrBadInput, b.ID)
	}
	for i, a := range []store.Action{b.Confirm, b.Cancel} {
		if a.URL == "" {
			continue
		}
		if err := checkAction(a); err != nil {
			return fmt.Errorf("branch %s: %w", b.ID, err)
		}
		if err := g.checkURL(a.URL); err != nil {
			return fmt.Errorf("branch %s: %s URL: %w", b.ID, [2]string{"confirm", "cancel"}[i], err)
		}
		switch a.Method {
		case "", http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodGet:
		default:
			return fmt.Errorf("%w: branch %s: method %q", ErrBadInput, b.ID, a.Method)
		}
		if len(a.Body) > 1<<20 {
			return fmt.Errorf("%w: branch %s: payload over 1 MiB", ErrBadInput, b.ID)
		}
		if jsontext.Depth(a.Body) > MaxPayloadDepth {
			return fmt.Errorf("%w: branch %s: payload nested deeper than %d levels", ErrBadInput, b.ID, MaxPayloadDepth)
		}
	}
	return nil
}

// Begin records a new transaction in state trying and returns it.
func (c *Coordinator) Begin(ctx context.Context, r BeginRequest) (*store.Txn, error) {
	if r.ID == "" {
		r.ID = randomHex(16)
	}
	if err := checkID("transaction id", r.ID); err != nil {
		return nil, err
	}
	set := c.Settings()
	if r.Timeout < 0 || r.Timeout > set.MaxTimeout {
		return nil, fmt.Errorf("%w: timeout %s: want 0 < timeout <= %s", ErrBadInput, r.Timeout, set.MaxTimeout)
	}
	if r.Timeout == 0 {
		r.Timeout = set.DefaultTimeout
	}
	policy := set.DefaultPolicy
	if r.Policy != nil {
		policy = *r.Policy
		if err := checkPolicy(policy); err != nil {
			return nil, err
		}
	}
	headers := map[string]string{}
	for k, v := range r.Headers {
		ck := http.CanonicalHeaderKey(k)
		if !headerRe.MatchString(k) || reserved[ck] || len(v) > 4096 {
			return nil, fmt.Errorf("%w: header %q cannot be set on branch calls", ErrBadInput, k)
		}
		if k == HeaderTrace || ck == "Traceparent" {
			ck = HeaderTrace
		}
		if _, dup := headers[ck]; dup {
			// Names differ only in case: one header on the wire, and which
			// value won would depend on map order. Refuse instead of guessing.
			return nil, fmt.Errorf("%w: header %q is given twice (header names are case-insensitive)", ErrBadInput, ck)
		}
		headers[ck] = v
	}
	seen := map[string]bool{}
	for _, b := range r.Branches {
		if err := c.guard.checkBranch(b); err != nil {
			return nil, err
		}
		if seen[b.ID] {
			return nil, fmt.Errorf("%w: branch %s listed twice", ErrBadInput, b.ID)
		}
		seen[b.ID] = true
	}
	now := c.opts.Now().UTC()
	t := &store.Txn{ID: r.ID, State: store.Trying, Policy: policy, Headers: headers,
		CreatedAt: now, UpdatedAt: now, Deadline: now.Add(r.Timeout), NextDue: now.Add(r.Timeout), Branches: r.Branches}
	if err := c.opts.Store.Create(ctx, t); err != nil {
		c.m.storeErrors(err)
		return nil, err
	}
	c.m.transitions.WithLabelValues(string(store.Trying)).Inc()
	if t.Branches == nil {
		t.Branches = []store.Branch{}
	}
	for i := range t.Branches {
		t.Branches[i].State = store.BranchRegistered
	}
	return t, nil
}

// Register adds a branch to a transaction that is still trying; the caller
// then runs the branch's Try itself.
func (c *Coordinator) Register(ctx context.Context, txnID string, b store.Branch) error {
	if err := checkID("transaction id", txnID); err != nil {
		return err
	}
	if err := c.guard.checkBranch(b); err != nil {
		return err
	}
	if err := c.opts.Store.AddBranch(ctx, txnID, b, c.opts.Now().UTC()); err != nil {
		c.m.storeErrors(err)
		return err
	}
	return nil
}

// Get returns one transaction with its branches.
func (c *Coordinator) Get(ctx context.Context, id string) (*store.Txn, error) {
	if err := checkID("transaction id", id); err != nil {
		return nil, err
	}
	t, err := c.opts.Store.Get(ctx, id)
	c.m.storeErrors(err)
	return t, err
}

// List returns transactions for the console, newest first.
func (c *Coordinator) List(ctx context.Context, f store.Filter) ([]*store.Txn, error) {
	if f.State != "" && !f.State.Valid() {
		return nil, fmt.Errorf("%w: state %q", ErrBadInput, f.State)
	}
	ts, err := c.opts.Store.List(ctx, f)
	c.m.storeErrors(err)
	return ts, err
}

// Ready reports whether the store answers.
func (c *Coordinator) Ready(ctx context.Context) error { return c.opts.Store.Ping(ctx) }
