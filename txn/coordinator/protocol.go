package coordinator

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rosenmesh/rosen/txn/store"
)

// Headers of the participant protocol. Every confirm and cancel call carries
// them, plus the W3C traceparent and the transaction's own custom headers.
const (
	HeaderTxnID    = "Rosen-Txn-Id"
	HeaderBranchID = "Rosen-Branch-Id"
	HeaderPhase    = "Rosen-Txn-Phase"
	HeaderTwistID  = "Twist-Transaction-ID" // for participants written against Twist
	HeaderTrace    = "traceparent"
)

var (
	canonTxnID    = http.CanonicalHeaderKey(HeaderTxnID)
	canonTwistID  = http.CanonicalHeaderKey(HeaderTwistID)
	canonBranchID = http.CanonicalHeaderKey(HeaderBranchID)
	canonPhase    = http.CanonicalHeaderKey(HeaderPhase)
	canonTrace    = http.CanonicalHeaderKey(HeaderTrace)
)

// Phases named in HeaderPhase.
const (
	PhaseTry     = "try"
	PhaseConfirm = "confirm"
	PhaseCancel  = "cancel"
)

// Result is what a participant's answer means.
type Result int

// Results of one branch call.
const (
	Done   Result = iota // 2xx and the body does not say otherwise
	Failed               // 409, or a body that says FAILURE: retrying cannot help
	Retry                // 425, ONGOING, any other status, or no answer: try again later
)

func (r Result) String() string {
	return [...]string{"done", "failed", "retry"}[r]
}

// Outcome is one call's result with the reason, for last_error.
type Outcome struct {
	Result Result
	Detail string
}

// Classify maps an HTTP answer to a Result:
//   - 409 Conflict: failed for good; 425 Too Early: retry later; other non-2xx: retry.
//   - 2xx is done unless the body says otherwise: a JSON object whose "status" or
//     "dtm_result" is "FAILURE" is failed, "ONGOING" is retry; a JSON object with a
//     non-empty "error" is retried (an error is never success); a plain-text body that is
//     FAILURE or ONGOING (case-insensitive, surrounding space ignored) means the same.
func Classify(status int, body []byte) Outcome {
	switch {
	case status == http.StatusConflict:
		return Outcome{Failed, fmt.Sprintf("participant answered %d: %s", status, snippet(body))}
	case status == http.StatusTooEarly:
		return Outcome{Retry, "participant answered 425 (ongoing)"}
	case status < 200 || status > 299:
		return Outcome{Retry, fmt.Sprintf("participant answered %d: %s", status, snippet(body))}
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var v struct {
			Status    string          `json:"status"`
			DTMResult string          `json:"dtm_result"`
			Error     json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(trimmed, &v); err == nil {
			for _, s := range []string{v.Status, v.DTMResult} {
				switch strings.ToUpper(s) {
				case "FAILURE":
					return Outcome{Failed, "participant answered 2xx with FAILURE: " + snippet(body)}
				case "ONGOING":
					return Outcome{Retry, "participant answered 2xx with ONGOING"}
				}
			}
			if e := string(v.Error); e != "" && e != "null" && e != `""` && e != "false" {
				return Outcome{Retry, "participant answered 2xx with an error: " + snippet(body)}
			}
		}
		return Outcome{Result: Done}
	}
	switch strings.ToUpper(string(trimmed)) {
	case "FAILURE":
		return Outcome{Failed, "participant answered 2xx with FAILURE"}
	case "ONGOING":
		return Outcome{Retry, "participant answered 2xx with ONGOING"}
	}
	return Outcome{Result: Done}
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Caller runs one branch's confirm or cancel.
type Caller interface {
	Call(ctx context.Context, t *store.Txn, b *store.Branch, phase string) Outcome
}

// HTTPCaller calls participants over HTTP.
type HTTPCaller struct {
	Client  *http.Client
	Timeout time.Duration // per call (default 10s): a participant that hangs is retried later
}

// NewHTTPCaller returns a caller with a connection pool sized for many participants.
func NewHTTPCaller(timeout time.Duration) *HTTPCaller {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 512
	tr.MaxIdleConnsPerHost = 256
	return &HTTPCaller{Client: &http.Client{Transport: tr}, Timeout: timeout}
}

// CloseIdle closes pooled connections (on shutdown).
func (c *HTTPCaller) CloseIdle() { c.Client.CloseIdleConnections() }

// Call implements Caller.
func (c *HTTPCaller) Call(ctx context.Context, t *store.Txn, b *store.Branch, phase string) Outcome {
	a := actionFor(b, phase)
	if a.URL == "" {
		return Outcome{Result: Done, Detail: "no " + phase + " action"}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	method := a.Method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, a.URL, bytes.NewReader(a.Body))
	if err != nil {
		return Outcome{Failed, fmt.Sprintf("bad %s action: %v", phase, err)}
	}
	h := make(http.Header, len(t.Headers)+6)
	for k, v := range t.Headers {
		h.Set(k, v)
	}
	// The protocol's headers, under their canonical keys (what Set would store).
	h["Content-Type"] = []string{"application/json"}
	h[canonTxnID] = []string{t.ID}
	h[canonTwistID] = []string{t.ID}
	h[canonBranchID] = []string{b.ID}
	h[canonPhase] = []string{phase}
	h[canonTrace] = []string{Traceparent(t)}
	req.Header = h
	resp, err := c.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Outcome{Retry, fmt.Sprintf("%s %s: no answer within %s", phase, a.URL, timeout)}
		}
		return Outcome{Retry, fmt.Sprintf("%s %s: %v", phase, a.URL, err)}
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return Classify(resp.StatusCode, body)
}

// Traceparent is a W3C traceparent for a call of t: the trace of the request
// that began t when it carried one, else a trace id derived from t's id, so
// that every call of one transaction joins one trace; a new span id each call.
func Traceparent(t *store.Txn) string {
	traceID := ""
	if tp := t.Headers[HeaderTrace]; len(tp) == 55 && tp[2] == '-' && tp[35] == '-' {
		traceID = tp[3:35]
	}
	if traceID == "" {
		sum := sha256.Sum256([]byte(t.ID))
		traceID = hex.EncodeToString(sum[:16])
	}
	var span [8]byte
	_, _ = rand.Read(span[:])
	return "00-" + traceID + "-" + hex.EncodeToString(span[:]) + "-01"
}
