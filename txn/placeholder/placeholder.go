// Package placeholder rewrites SQL written with ? placeholders (MySQL,
// SQLite) into PostgreSQL's numbered $1, $2, … form.
package placeholder

import (
	"strconv"
	"strings"
)

// Dollar numbers every ? in q as $1, $2, …. It does not look inside string
// literals: write queries whose literals contain no question mark.
func Dollar(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
