package wire

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/rosenmesh/rosen/txn/jsontext"
	"github.com/rosenmesh/rosen/txn/store"
)

// AppendView appends t as the API shows it, the JSON document that
// json.Marshal(View(t)) writes, byte for byte, without reflection: the REST
// API answers begin, commit and get with it on the hot path.
func AppendView(b []byte, t *store.Txn) []byte {
	b = append(b, `{"id":`...)
	b = jsontext.AppendString(b, t.ID)
	b = append(b, `,"state":`...)
	b = jsontext.AppendString(b, string(t.State))
	if t.StuckPhase != "" {
		b = append(b, `,"stuck_phase":`...)
		b = jsontext.AppendString(b, string(t.StuckPhase))
	}
	if t.Reason != "" {
		b = append(b, `,"reason":`...)
		b = jsontext.AppendString(b, t.Reason)
	}
	b = append(b, `,"retry":{"initial":`...)
	b = jsontext.AppendString(b, t.Policy.Initial.String())
	b = append(b, `,"max":`...)
	b = jsontext.AppendString(b, t.Policy.Max.String())
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(t.Policy.Limit), 10)
	b = append(b, '}')
	if len(t.Headers) > 0 {
		b = append(b, `,"headers":{`...)
		keys := make([]string, 0, len(t.Headers))
		for k := range t.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsontext.AppendString(b, k)
			b = append(b, ':')
			b = jsontext.AppendString(b, t.Headers[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"created_at":`...)
	b = appendTime(b, t.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, t.UpdatedAt)
	b = append(b, `,"deadline":`...)
	b = appendTime(b, t.Deadline)
	if !t.FinishedAt.IsZero() {
		b = append(b, `,"finished_at":`...)
		b = appendTime(b, t.FinishedAt)
	}
	if !t.NextDue.IsZero() {
		b = append(b, `,"next_due":`...)
		b = appendTime(b, t.NextDue)
	}
	if t.Owner != "" {
		b = append(b, `,"owner":`...)
		b = jsontext.AppendString(b, t.Owner)
	}
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(t.Attempts), 10)
	if t.LastError != "" {
		b = append(b, `,"last_error":`...)
		b = jsontext.AppendString(b, t.LastError)
	}
	if len(t.Branches) > 0 {
		b = append(b, `,"branches":[`...)
		for i := range t.Branches {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendBranch(b, &t.Branches[i])
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendBranch(b []byte, br *store.Branch) []byte {
	b = append(b, `{"branch_id":`...)
	b = jsontext.AppendString(b, br.ID)
	b = append(b, `,"state":`...)
	b = jsontext.AppendString(b, string(br.State))
	b = append(b, `,"confirm":`...)
	b = appendAction(b, br.Confirm)
	b = append(b, `,"cancel":`...)
	b = appendAction(b, br.Cancel)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(br.Attempts), 10)
	if br.LastError != "" {
		b = append(b, `,"last_error":`...)
		b = jsontext.AppendString(b, br.LastError)
	}
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, br.UpdatedAt)
	return append(b, '}')
}

// appendAction is ActionView's JSON: a body that is JSON is shown as JSON (compacted, HTML-escaped, as
// encoding/json shows a json.RawMessage), any other as a string.
func appendAction(b []byte, a store.Action) []byte {
	b = append(b, '{')
	comma := false
	if a.URL != "" {
		b = append(b, `"url":`...)
		b = jsontext.AppendString(b, a.URL)
		comma = true
	}
	if a.Method != "" {
		if comma {
			b = append(b, ',')
		}
		b = append(b, `"method":`...)
		b = jsontext.AppendString(b, a.Method)
		comma = true
	}
	if len(a.Body) > 0 {
		if comma {
			b = append(b, ',')
		}
		b = append(b, `"body":`...)
		switch {
		case !json.Valid(a.Body):
			b = jsontext.AppendString(b, string(a.Body))
		case plainJSON(a.Body):
			b = append(b, a.Body...)
		default:
			var c bytes.Buffer
			_ = json.Compact(&c, a.Body)
			var e bytes.Buffer
			json.HTMLEscape(&e, c.Bytes())
			b = append(b, e.Bytes()...)
		}
	}
	return append(b, '}')
}

// plainJSON: valid JSON that encoding/json would copy unchanged (no white
// space to compact, nothing to HTML-escape).
func plainJSON(raw []byte) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r', '<', '>', '&', 0xE2: // 0xE2 starts U+2028 and U+2029
			return false
		}
	}
	return true
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// DecodeBranch reads a branch registration as json.Unmarshal would, directly
// when it has the shape clients write (keys branch_id, confirm, cancel and
// method as plain strings, no white space, payload last), and reports false
// when it does not: decode it with encoding/json then.
func DecodeBranch(raw []byte, b *Branch) bool {
	var out Branch
	rest, ok := bytes.CutPrefix(raw, []byte{'{'})
	if !ok || len(rest) == 0 || rest[len(rest)-1] != '}' {
		return false
	}
	rest = rest[:len(rest)-1]
	for len(rest) > 0 {
		key, r, ok := jsontext.PlainString(rest)
		if !ok || len(r) == 0 || r[0] != ':' {
			return false
		}
		r = r[1:]
		if key == "payload" { // the last key: the rest is its value, kept as written
			if len(r) == 0 || isSpace(r[0]) || isSpace(r[len(r)-1]) || !json.Valid(r) {
				return false
			}
			out.Payload = append(json.RawMessage(nil), r...)
			*b = out
			return true
		}
		var v string
		if v, r, ok = jsontext.PlainString(r); !ok {
			return false
		}
		switch key {
		case "branch_id":
			out.ID = v
		case "confirm":
			out.Confirm = v
		case "cancel":
			out.Cancel = v
		case "method":
			out.Method = v
		default:
			return false
		}
		if len(r) > 0 {
			if r[0] != ',' || len(r) == 1 {
				return false
			}
			r = r[1:]
		}
		rest = r
	}
	*b = out
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
