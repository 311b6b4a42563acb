package validate

import (
	"regexp/syntax"
	"unicode"
)

// fromSyntax converts Go's parse tree into the tree RE2's parser builds for
// the same regex. The two parsers share their design; the differences that
// change RE2's program are corrected here:
//   - a case-folded literal whose fold orbit is not an ASCII letter pair
//     ((?i)k, (?i)é) is a character class in RE2, not a literal;
//   - x**, x+*, (?:x?)+ and friends squash to one operator in RE2;
//   - RE2 factors alternations more (common empty-width prefixes, ^a|^b),
//     so each alternation is refactored with RE2's rounds;
//   - "." is the class [^\n] in RE2.
func fromSyntax(re *syntax.Regexp) *reNode {
	switch re.Op {
	case syntax.OpNoMatch:
		return &reNode{op: opNoMatch, flags: re.Flags}
	case syntax.OpEmptyMatch:
		return &reNode{op: opEmptyMatch, flags: re.Flags}
	case syntax.OpLiteral:
		return concatOf(literalNodes(re), re.Flags)
	case syntax.OpCharClass:
		return &reNode{op: opCharClass, flags: re.Flags, class: pairsToRanges(re.Rune)}
	case syntax.OpAnyCharNotNL:
		return &reNode{op: opCharClass, flags: re.Flags &^ syntax.FoldCase,
			class: []runeRange{{0, '\n' - 1}, {'\n' + 1, maxRune}}}
	case syntax.OpAnyChar:
		return &reNode{op: opAnyChar, flags: re.Flags}
	case syntax.OpBeginLine:
		return &reNode{op: opBeginLine, flags: re.Flags}
	case syntax.OpEndLine:
		return &reNode{op: opEndLine, flags: re.Flags}
	case syntax.OpBeginText:
		return &reNode{op: opBeginText, flags: re.Flags}
	case syntax.OpEndText:
		return &reNode{op: opEndText, flags: re.Flags}
	case syntax.OpWordBoundary:
		return &reNode{op: opWordBoundary, flags: re.Flags}
	case syntax.OpNoWordBoundary:
		return &reNode{op: opNoWordBoundary, flags: re.Flags}
	case syntax.OpCapture:
		return &reNode{op: opCapture, flags: re.Flags, capIndex: re.Cap, subs: []*reNode{fromSyntax(re.Sub[0])}}
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		return repeatOp(syntaxRepeatOp[re.Op], fromSyntax(re.Sub[0]), re.Flags)
	case syntax.OpRepeat:
		return &reNode{op: opRepeat, flags: re.Flags, min: re.Min, max: re.Max, subs: []*reNode{fromSyntax(re.Sub[0])}}
	case syntax.OpConcat:
		return concatFromSyntax(re)
	case syntax.OpAlternate:
		return alternateFromSyntax(re)
	}
	return &reNode{op: opNoMatch, flags: re.Flags}
}

var syntaxRepeatOp = map[syntax.Op]reOp{syntax.OpStar: opStar, syntax.OpPlus: opPlus, syntax.OpQuest: opQuest}

// repeatOp applies RE2's PushRepeatOp squashing: x** is x*, and any two of
// *, + and ? stacked with the same flags are x*.
func repeatOp(op reOp, sub *reNode, flags syntax.Flags) *reNode {
	if sub.flags == flags {
		if sub.op == op {
			return sub
		}
		if sub.op == opStar || sub.op == opPlus || sub.op == opQuest {
			sub.op = opStar
			return sub
		}
	}
	return &reNode{op: op, flags: flags, subs: []*reNode{sub}}
}

// literalNodes splits a Go literal into RE2's nodes: with case folding, a
// rune whose fold orbit is an ASCII letter pair stays a folded literal
// (stored lower-case, as RE2 does), a rune with a larger or non-ASCII orbit
// becomes a class of the orbit, and a rune without folds stays a literal.
func literalNodes(re *syntax.Regexp) []*reNode {
	out := make([]*reNode, 0, 1)
	for _, r := range re.Rune {
		if re.Flags&syntax.FoldCase == 0 || unicode.SimpleFold(r) == r {
			out = appendLiteral(out, r, re.Flags)
			continue
		}
		orbit := foldOrbit(r)
		if len(orbit) == 2 && orbit[0].lo >= 'A' && orbit[0].lo <= 'Z' && orbit[1].lo == orbit[0].lo+'a'-'A' {
			out = appendLiteral(out, orbit[1].lo, re.Flags|syntax.FoldCase)
			continue
		}
		out = append(out, &reNode{op: opCharClass, flags: re.Flags &^ syntax.FoldCase, class: orbit})
	}
	return out
}

// appendLiteral appends r, merging it into a preceding literal with the same
// case folding (RE2's MaybeConcatString).
func appendLiteral(out []*reNode, r rune, flags syntax.Flags) []*reNode {
	if n := len(out); n > 0 && out[n-1].isLiteralish() && (out[n-1].flags^flags)&syntax.FoldCase == 0 {
		last := out[n-1]
		last.runes = append(last.runes, r)
		last.op = opLiteralString
		return out
	}
	return append(out, &reNode{op: opLiteral, flags: flags, runes: []rune{r}})
}

// foldOrbit returns the sorted single-rune ranges of r's case-folding orbit.
func foldOrbit(r rune) []runeRange {
	var c classBuilder
	for f := r; ; {
		c.add(f, f)
		if f = unicode.SimpleFold(f); f == r {
			break
		}
	}
	return c.ranges
}

func pairsToRanges(pairs []rune) []runeRange {
	var c classBuilder
	for i := 0; i+1 < len(pairs); i += 2 {
		c.add(pairs[i], pairs[i+1])
	}
	return c.ranges
}

// concatFromSyntax flattens nested concatenations. Adjacent literals stay
// separate nodes: both parsers merge literals only while pushing them, so
// "ks" and the "a" of (?:a…) remain two nodes in RE2 as in Go.
func concatFromSyntax(re *syntax.Regexp) *reNode {
	var subs []*reNode
	for _, s := range re.Sub {
		if n := fromSyntax(s); n.op == opConcat {
			subs = append(subs, n.subs...)
		} else {
			subs = append(subs, n)
		}
	}
	return concatOf(subs, re.Flags)
}

func concatOf(subs []*reNode, flags syntax.Flags) *reNode {
	switch len(subs) {
	case 0:
		return &reNode{op: opEmptyMatch, flags: flags}
	case 1:
		return subs[0]
	}
	return &reNode{op: opConcat, flags: flags, subs: subs}
}

// alternateFromSyntax flattens nested alternations and factors them with
// RE2's rounds.
func alternateFromSyntax(re *syntax.Regexp) *reNode {
	var subs []*reNode
	for _, s := range re.Sub {
		if n := fromSyntax(s); n.op == opAlternate {
			subs = append(subs, n.subs...)
		} else {
			subs = append(subs, n)
		}
	}
	subs = factorAlternation(subs, re.Flags)
	switch len(subs) {
	case 0:
		return &reNode{op: opNoMatch, flags: re.Flags}
	case 1:
		return subs[0]
	}
	return &reNode{op: opAlternate, flags: re.Flags, subs: subs}
}
