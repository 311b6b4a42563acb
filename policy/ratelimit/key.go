package ratelimit

import (
	"strconv"
	"strings"
)

// counterKey names the counter of one descriptor in one window. Every part is
// length-prefixed ("<len>:<bytes>"), so no choice of keys and values can make
// two different descriptors share a counter: ("a_b","c") and ("a","b_c")
// differ, where envoyproxy/ratelimit's "_"-joined keys collide.
func counterKey(prefix, domain string, entries []Entry, unit Unit, windowStart int64) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(domain) + 32 + 16*len(entries))
	b.WriteString(prefix)
	lp(&b, domain)
	for _, e := range entries {
		lp(&b, e.Key)
		lp(&b, e.Value)
	}
	lp(&b, string(unit))
	b.WriteString(strconv.FormatInt(windowStart, 10))
	return b.String()
}

func lp(b *strings.Builder, s string) {
	b.WriteString(strconv.Itoa(len(s)))
	b.WriteByte(':')
	b.WriteString(s)
}
