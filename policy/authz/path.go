package authz

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadPath is returned for a request path that Envoy's own normalisation
// would reject (a bare or truncated percent escape, an encoded NUL).
var ErrBadPath = errors.New("authz: invalid request path")

// SplitPath splits an HTTP :path into its path and raw query (without '?').
// A fragment, which a client must not send, is dropped with the query.
func SplitPath(raw string) (path, query string) {
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		raw = raw[:i]
	}
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i], raw[i+1:]
	}
	return raw, ""
}

// CanonicalPath returns the form of a request path that policies should be
// written against, computed the way Envoy's gateway normalisation does with
// normalize_path, merge_slashes and UNESCAPE_AND_FORWARD for escaped slashes:
// percent-decoding is done exactly once (so "%2F" becomes "/" and "%252F"
// stays "%2F"), backslashes are treated as slashes, runs of slashes are
// merged, and "." and ".." segments are resolved without climbing above the
// root. "/people%2F..%2Fadmin" is "/admin". The query is not part of it.
func CanonicalPath(path string) (string, error) {
	decoded, err := percentDecode(path)
	if err != nil {
		return "", err
	}
	decoded = strings.ReplaceAll(decoded, `\`, "/")
	var out []string
	for _, seg := range strings.Split(decoded, "/") {
		switch seg {
		case "", ".":
			// empty segments come from merged slashes
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	canon := "/" + strings.Join(out, "/")
	// Keep a trailing slash: "/admin/" and "/admin" can route differently.
	if len(out) > 0 && (strings.HasSuffix(decoded, "/") || strings.HasSuffix(decoded, "/.") || strings.HasSuffix(decoded, "/..")) {
		canon += "/"
	}
	return canon, nil
}

// percentDecode decodes every %XX escape once. A '%' not followed by two hex
// digits, or an escape that decodes to NUL, is an error (Envoy answers 400).
func percentDecode(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		if strings.IndexByte(s, 0) >= 0 {
			return "", fmt.Errorf("%w: NUL byte", ErrBadPath)
		}
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0:
			return "", fmt.Errorf("%w: NUL byte", ErrBadPath)
		case c != '%':
			b.WriteByte(c)
		case i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]):
			return "", fmt.Errorf("%w: bad percent-encoding at byte %d", ErrBadPath, i)
		default:
			v := unhex(s[i+1])<<4 | unhex(s[i+2])
			if v == 0 {
				return "", fmt.Errorf("%w: encoded NUL (%%00) at byte %d", ErrBadPath, i)
			}
			b.WriteByte(v)
			i += 2
		}
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
