package validate

import (
	"regexp/syntax"
	"strings"
)

// Go's parser merges identical adjacent alternatives (c|c, x|a|[a], \d*|\d*)
// before ProgramSize sees the tree, while RE2 keeps them: as c(?:|), which
// also stops RE2 from merging c into a neighbouring class, or as two full
// copies. The parse tree no longer shows the duplicates, so they are found
// in the regex text instead.

// dedupeAlternatives rewrites each alternative identical to the one before
// it, X|X, to X|(X), which Go's parser keeps apart and for which RE2's
// program is never smaller, and returns the rewritten regex and the number
// of duplicates (0, and re itself, when there are none).
func dedupeAlternatives(re string) (string, int) {
	if !strings.Contains(re, "|") {
		return re, 0 // no alternation, nothing to find (the common case)
	}
	type branch struct {
		start, end int
		text       string
		parsed     *syntax.Regexp // nil when the branch alone does not parse
	}
	// same compares parsed forms, so that a|[a] and ab|a(?:b) count.
	// Regexp.Equal, not String(): String re-derives case-folding flags and
	// costs milliseconds on large Unicode classes.
	same := func(a, b branch) bool {
		if a.parsed != nil && b.parsed != nil {
			return a.parsed.Equal(b.parsed)
		}
		return a.text == b.text
	}
	type group struct {
		branches []branch
		start    int // start of the current branch
		weight   int // duplicates found inside, times their repetition
	}
	type edit struct{ at int } // a duplicate alternative starting at
	var edits []edit
	stack := []*group{{start: 0}}
	closeBranch := func(g *group, end int) {
		text := re[g.start:end]
		b := branch{start: g.start, end: end, text: text}
		if p, err := syntax.Parse(groupBody(text), syntax.Perl); err == nil {
			b.parsed = p
		}
		g.branches = append(g.branches, b)
	}
	// finish counts a group's duplicates, weighted by repetition.
	finish := func(g *group) int {
		dups := 0
		for i := 1; i < len(g.branches); i++ {
			if same(g.branches[i], g.branches[i-1]) {
				dups++
				edits = append(edits, edit{g.branches[i].start}, edit{-g.branches[i].end})
			}
		}
		return g.weight + dups
	}
	for i := 0; i < len(re); i++ {
		switch re[i] {
		case '\\':
			if i+1 < len(re) && re[i+1] == 'Q' {
				if end := indexFrom(re, `\E`, i+2); end >= 0 {
					i = end + 1
				} else {
					i = len(re)
				}
				continue
			}
			i++
		case '[':
			i = skipClass(re, i)
		case '(':
			stack = append(stack, &group{start: i + 1})
		case '|':
			g := stack[len(stack)-1]
			closeBranch(g, i)
			g.start = i + 1
		case ')':
			if len(stack) == 1 {
				continue
			}
			g := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			closeBranch(g, i)
			factor, next := repeatFactor(re, i+1)
			stack[len(stack)-1].weight += finish(g) * factor
			i = next - 1
		}
	}
	top := stack[0]
	closeBranch(top, len(re))
	dups := finish(top)
	if dups == 0 {
		return re, 0
	}
	// Wrap each duplicate in a capture: Go's parser keeps X|(X) apart, and
	// RE2's program for it is never smaller than for X|X.
	opens := map[int]int{}
	closes := map[int]int{}
	for _, e := range edits {
		if e.at >= 0 {
			opens[e.at]++
		} else {
			closes[-e.at]++
		}
	}
	var b strings.Builder
	for i := 0; i <= len(re); i++ {
		b.WriteString(strings.Repeat(")", closes[i]))
		b.WriteString(strings.Repeat("(", opens[i]))
		if i < len(re) {
			b.WriteByte(re[i])
		}
	}
	return b.String(), dups
}

// groupBody strips a group's opening syntax (?:, ?i:, ?P<name>) from the
// text of its first branch.
func groupBody(text string) string {
	if !strings.HasPrefix(text, "?") {
		return text
	}
	for i := 1; i < len(text); i++ {
		switch text[i] {
		case ':', '>':
			return text[i+1:]
		case ')', '(', '|':
			return text
		}
	}
	return text
}

func indexFrom(s, sub string, from int) int {
	for i := from; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// skipClass returns the index of the ] that closes the class opened at i.
func skipClass(re string, i int) int {
	j := i + 1
	if j < len(re) && re[j] == '^' {
		j++
	}
	if j < len(re) && re[j] == ']' {
		j++
	}
	for ; j < len(re); j++ {
		switch {
		case re[j] == '\\':
			j++
		case re[j] == '[' && j+1 < len(re) && re[j+1] == ':':
			if end := indexFrom(re, ":]", j+2); end >= 0 {
				j = end + 1
			}
		case re[j] == ']':
			return j
		}
	}
	return len(re)
}

// repeatFactor reads the repetition operator at i, if any, and returns how
// many copies of the group RE2's simplifier makes and the index after it.
func repeatFactor(re string, i int) (int, int) {
	if i >= len(re) {
		return 1, i
	}
	switch re[i] {
	case '*', '+', '?':
		return 1, i + 1
	case '{':
		lo, hi, end, ok := parseCount(re, i+1)
		if !ok {
			return 1, i
		}
		n := hi
		if hi < 0 {
			n = lo + 1
		}
		return max(n, 1), end
	}
	return 1, i
}

// parseCount parses "n}", "n,}" or "n,m}" and returns n, m (-1 if open).
func parseCount(re string, i int) (lo, hi, end int, ok bool) {
	num := func() (int, bool) {
		start, v := i, 0
		for i < len(re) && re[i] >= '0' && re[i] <= '9' && v < 100000 {
			v = v*10 + int(re[i]-'0')
			i++
		}
		return v, i > start
	}
	if lo, ok = num(); !ok {
		return 0, 0, 0, false
	}
	hi = lo
	if i < len(re) && re[i] == ',' {
		i++
		if i < len(re) && re[i] == '}' {
			hi = -1
		} else if hi, ok = num(); !ok {
			return 0, 0, 0, false
		}
	}
	if i >= len(re) || re[i] != '}' {
		return 0, 0, 0, false
	}
	return lo, hi, i + 1, true
}
