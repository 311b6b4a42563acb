package validate

import (
	"regexp/syntax"
	"sort"
	"unicode"
)

// classBuilder keeps a set of runes as sorted, non-overlapping,
// non-abutting ranges (RE2's CharClassBuilder).
type classBuilder struct{ ranges []runeRange }

func (c *classBuilder) add(lo, hi rune) {
	if hi < lo {
		return
	}
	// Fast path: appending above the last range, as sorted input does.
	if n := len(c.ranges); n == 0 || lo > c.ranges[n-1].hi+1 {
		c.ranges = append(c.ranges, runeRange{lo, hi})
		return
	}
	c.ranges = append(c.ranges, runeRange{lo, hi})
	sort.Slice(c.ranges, func(i, j int) bool { return c.ranges[i].lo < c.ranges[j].lo })
	out := c.ranges[:1]
	for _, r := range c.ranges[1:] {
		last := &out[len(out)-1]
		if r.lo <= last.hi+1 {
			if r.hi > last.hi {
				last.hi = r.hi
			}
			continue
		}
		out = append(out, r)
	}
	c.ranges = out
}

// addFolded adds r and every rune in its case-folding orbit.
func (c *classBuilder) addFolded(r rune) {
	for f := r; ; {
		c.add(f, f)
		if f = unicode.SimpleFold(f); f == r {
			return
		}
	}
}

// factorAlternation is RE2's Regexp::FactorAlternation: round 1 pulls out
// common literal prefixes, round 2 common leading pieces (empty-width ops,
// classes, fixed repeats of single characters), round 3 merges runs of
// literals and classes into one class. The suffix lists of rounds 1 and 2
// are factored recursively.
func factorAlternation(subs []*reNode, flags syntax.Flags) []*reNode {
	subs = factorRound(subs, flags, splicesByLeadingString)
	subs = factorRound(subs, flags, splicesByLeadingPiece)
	return mergeCharRuns(subs, flags)
}

// splice replaces subs[start:end] by prefix followed by the alternation of
// what remains of them.
type splice struct {
	prefix     *reNode
	start, end int
}

func factorRound(subs []*reNode, flags syntax.Flags, find func([]*reNode) []splice) []*reNode {
	splices := find(subs)
	if len(splices) == 0 {
		return subs
	}
	out := make([]*reNode, 0, len(subs))
	i := 0
	for _, sp := range splices {
		out = append(out, subs[i:sp.start]...)
		suffix := factorAlternation(subs[sp.start:sp.end], flags)
		var alt *reNode
		if len(suffix) == 1 {
			alt = suffix[0]
		} else {
			alt = &reNode{op: opAlternate, flags: flags, subs: suffix}
		}
		out = append(out, &reNode{op: opConcat, flags: flags, subs: []*reNode{sp.prefix, alt}})
		i = sp.end
	}
	return append(out, subs[i:]...)
}

// leadingString returns the literal runes a regex starts with and their
// case folding.
func leadingString(re *reNode) ([]rune, bool) {
	for re.op == opConcat && len(re.subs) > 0 {
		re = re.subs[0]
	}
	if re.isLiteralish() {
		return re.runes, re.foldCase()
	}
	return nil, re.foldCase()
}

func splicesByLeadingString(subs []*reNode) []splice {
	var out []splice
	start := 0
	var runes []rune
	var fold bool
	for i := 0; i <= len(subs); i++ {
		var runesI []rune
		var foldI bool
		if i < len(subs) {
			runesI, foldI = leadingString(subs[i])
			if foldI == fold {
				same := 0
				for same < len(runes) && same < len(runesI) && runes[same] == runesI[same] {
					same++
				}
				if same > 0 {
					runes = runes[:same]
					continue
				}
			}
		}
		if i > start+1 {
			prefix := literalOf(append([]rune(nil), runes...), fold)
			for j := start; j < i; j++ {
				removeLeadingString(subs[j], len(runes))
			}
			out = append(out, splice{prefix, start, i})
		}
		if i < len(subs) {
			start, runes, fold = i, runesI, foldI
		}
	}
	return out
}

func literalOf(runes []rune, fold bool) *reNode {
	var flags syntax.Flags
	if fold {
		flags = syntax.FoldCase
	}
	switch len(runes) {
	case 0:
		return &reNode{op: opEmptyMatch, flags: flags}
	case 1:
		return &reNode{op: opLiteral, flags: flags, runes: runes}
	}
	return &reNode{op: opLiteralString, flags: flags, runes: runes}
}

// removeLeadingString removes n leading runes from re in place, and then
// the emptied leading elements of up to four enclosing concatenations.
func removeLeadingString(re *reNode, n int) {
	var stk []*reNode
	for re.op == opConcat {
		if len(stk) < 4 {
			stk = append(stk, re)
		}
		re = re.subs[0]
	}
	switch {
	case re.op == opLiteral || (re.op == opLiteralString && n >= len(re.runes)):
		re.op, re.runes = opEmptyMatch, nil
	case re.op == opLiteralString:
		re.runes = append([]rune(nil), re.runes[n:]...)
		if len(re.runes) == 1 {
			re.op = opLiteral
		}
	}
	for d := len(stk) - 1; d >= 0; d-- {
		c := stk[d]
		if c.subs[0].op != opEmptyMatch {
			continue
		}
		switch len(c.subs) {
		case 0, 1:
			c.op, c.subs = opEmptyMatch, nil
		case 2:
			*c = *c.subs[1]
		default:
			c.subs = c.subs[1:]
		}
	}
}

// leadingRegexp is the first piece of a concatenation (or the regex itself).
func leadingRegexp(re *reNode) *reNode {
	if re.op == opEmptyMatch {
		return nil
	}
	if re.op == opConcat && len(re.subs) >= 2 {
		if re.subs[0].op == opEmptyMatch {
			return nil
		}
		return re.subs[0]
	}
	return re
}

func removeLeadingRegexp(re *reNode) *reNode {
	if re.op == opEmptyMatch {
		return re
	}
	if re.op == opConcat && len(re.subs) >= 2 {
		if re.subs[0].op == opEmptyMatch {
			return re
		}
		if len(re.subs) == 2 {
			return re.subs[1]
		}
		re.subs = re.subs[1:]
		return re
	}
	return &reNode{op: opEmptyMatch, flags: re.flags}
}

func isSingleChar(op reOp) bool {
	return op == opLiteral || op == opCharClass || op == opAnyChar || op == opAnyByte
}

// factorablePiece is the set of leading pieces round 2 factors.
func factorablePiece(re *reNode) bool {
	switch re.op {
	case opBeginLine, opEndLine, opWordBoundary, opNoWordBoundary, opBeginText, opEndText,
		opCharClass, opAnyChar, opAnyByte:
		return true
	case opRepeat:
		return re.min == re.max && isSingleChar(re.subs[0].op)
	}
	return false
}

func splicesByLeadingPiece(subs []*reNode) []splice {
	var out []splice
	start := 0
	var first *reNode
	for i := 0; i <= len(subs); i++ {
		var firstI *reNode
		if i < len(subs) {
			firstI = leadingRegexp(subs[i])
			if first != nil && firstI != nil && factorablePiece(first) && re2Equal(first, firstI) {
				continue
			}
		}
		if i > start+1 {
			for j := start; j < i; j++ {
				subs[j] = removeLeadingRegexp(subs[j])
			}
			out = append(out, splice{first, start, i})
		}
		if i < len(subs) {
			start, first = i, firstI
		}
	}
	return out
}

// mergeCharRuns is round 3: runs of literals and classes become one class.
func mergeCharRuns(subs []*reNode, flags syntax.Flags) []*reNode {
	isChar := func(re *reNode) bool { return re.op == opLiteral || re.op == opCharClass }
	out := make([]*reNode, 0, len(subs))
	for i := 0; i < len(subs); {
		j := i + 1
		if isChar(subs[i]) {
			for j < len(subs) && isChar(subs[j]) {
				j++
			}
		}
		if j-i < 2 {
			out = append(out, subs[i])
			i = j
			continue
		}
		var c classBuilder
		for _, re := range subs[i:j] {
			if re.op == opCharClass {
				for _, r := range re.class {
					c.add(r.lo, r.hi)
				}
			} else if re.foldCase() {
				c.addFolded(re.runes[0])
			} else {
				c.add(re.runes[0], re.runes[0])
			}
		}
		out = append(out, &reNode{op: opCharClass, flags: flags, class: c.ranges})
		i = j
	}
	return out
}
