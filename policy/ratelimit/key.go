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
	n := len(prefix) + len(domain) + len(unit) + 3*6 + 20 // 6 bytes covers "<len>:" up to 99999
	for _, e := range entries {
		n += len(e.Key) + len(e.Value) + 2*6
	}
	var b strings.Builder
	b.Grow(n) // one allocation: lengths are written through a stack buffer
	b.WriteString(prefix)
	lp(&b, domain)
	for _, e := range entries {
		lp(&b, e.Key)
		lp(&b, e.Value)
	}
	lp(&b, string(unit))
	var num [20]byte
	b.Write(strconv.AppendInt(num[:0], windowStart, 10))
	return b.String()
}

func lp(b *strings.Builder, s string) {
	var num [20]byte
	b.Write(strconv.AppendInt(num[:0], int64(len(s)), 10))
	b.WriteByte(':')
	b.WriteString(s)
}
