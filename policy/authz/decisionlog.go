package authz

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// Entry is one decision, as logged and kept for the console.
type Entry struct {
	Time          time.Time `json:"time"`
	RequestID     string    `json:"request_id,omitempty"`
	Method        string    `json:"method,omitempty"`
	Host          string    `json:"host,omitempty"`
	Path          string    `json:"path,omitempty"`
	CanonicalPath string    `json:"canonical_path,omitempty"`
	Subject       string    `json:"subject,omitempty"` // verified JWT sub
	Allowed       bool      `json:"allowed"`
	Status        int       `json:"status"`
	Reason        string    `json:"reason,omitempty"`
	PolicyVersion string    `json:"policy_version,omitempty"`
	DryRun        bool      `json:"dry_run,omitempty"`
	// WouldAllow is the policy's own answer in dry-run mode.
	WouldAllow bool          `json:"would_allow,omitempty"`
	Latency    time.Duration `json:"latency_ns"`
}

// MaxEntryField bounds each string of a kept or logged decision: a request
// can carry megabytes of path or header (gRPC allows 4 MiB), and the ring
// would otherwise keep a thousand of them (gigabytes).
const MaxEntryField = 1024

// clipped returns e with every request-supplied string cut to MaxEntryField
// bytes (marked with the full length).
func (e Entry) clipped() Entry {
	for _, f := range []*string{&e.RequestID, &e.Method, &e.Host, &e.Path, &e.CanonicalPath, &e.Subject, &e.Reason} {
		*f = clip(*f)
	}
	return e
}

func clip(s string) string {
	if len(s) <= MaxEntryField {
		return s
	}
	return strings.ToValidUTF8(s[:MaxEntryField], "") + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// Ring keeps the last N decisions in memory.
type Ring struct {
	mu   sync.Mutex
	buf  []Entry
	next int
	full bool
}

// NewRing returns a ring of n entries (at least 1).
func NewRing(n int) *Ring {
	if n < 1 {
		n = 1
	}
	return &Ring{buf: make([]Entry, n)}
}

// Add records e, overwriting the oldest entry when full.
func (r *Ring) Add(e Entry) {
	r.mu.Lock()
	r.buf[r.next] = e
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

// Entries returns the kept decisions, newest first.
func (r *Ring) Entries() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]Entry, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}
