package validate

// This file and its re2size_*.go siblings compute the size of the program
// RE2 compiles a regex into (RE2::ProgramSize(), the number Envoy compares
// with re2.max_program_size.error_level), in pure Go.
//
// The pipeline follows RE2 (the release Debian 12 ships, 2022-06-01, against
// which testdata/re2sizes.tsv was measured):
//
//	Go's regexp/syntax parse tree
//	→ RE2's parse tree (fromSyntax: case folding, repeat squashing and
//	  alternation factoring the way RE2's parser does them)
//	→ RE2::Init's required-prefix split (requiredPrefixSuffix)
//	→ Regexp::Simplify (coalesce, then expand counted repetitions)
//	→ Compiler::Compile (UTF-8 rune-range tries, anchors, the .*? prefix)
//	→ Prog::Optimize and Prog::Flatten, after which size() is read.
//
// Go's parser is itself a port of RE2's, so the parse trees agree except
// where fromSyntax corrects them.

import "regexp/syntax"

// reOp is the operator of an RE2 parse-tree node (RE2's RegexpOp).
type reOp uint8

const (
	opNoMatch reOp = iota + 1
	opEmptyMatch
	opLiteral
	opLiteralString
	opConcat
	opAlternate
	opStar
	opPlus
	opQuest
	opRepeat
	opCapture
	opAnyChar
	opAnyByte
	opBeginLine
	opEndLine
	opWordBoundary
	opNoWordBoundary
	opBeginText
	opEndText
	opCharClass
)

// runeRange is an inclusive range of code points.
type runeRange struct{ lo, hi rune }

// reNode is a node of RE2's parse tree. flags holds the parse flags in
// force where the node was parsed (Go's flag bits, which carry the same
// meaning for the bits RE2 compares: FoldCase, NonGreedy, WasDollar).
type reNode struct {
	op       reOp
	flags    syntax.Flags
	runes    []rune      // opLiteral (one rune), opLiteralString
	class    []runeRange // opCharClass: sorted, non-overlapping, non-abutting
	subs     []*reNode
	min, max int // opRepeat; max == -1 means no upper bound
	capIndex int // opCapture
}

const maxRune = 0x10FFFF

func (n *reNode) foldCase() bool  { return n.flags&syntax.FoldCase != 0 }
func (n *reNode) nonGreedy() bool { return n.flags&syntax.NonGreedy != 0 }

// isLiteralish reports whether n is a literal or literal string.
func (n *reNode) isLiteralish() bool { return n.op == opLiteral || n.op == opLiteralString }

// re2Equal is RE2's Regexp::Equal: structural equality with RE2's rules
// for which flags matter.
func re2Equal(a, b *reNode) bool {
	if a.op != b.op {
		return false
	}
	switch a.op {
	case opEndText:
		return (a.flags^b.flags)&syntax.WasDollar == 0
	case opLiteral, opLiteralString:
		return (a.flags^b.flags)&syntax.FoldCase == 0 && equalRunes(a.runes, b.runes)
	case opStar, opPlus, opQuest:
		if (a.flags^b.flags)&syntax.NonGreedy != 0 {
			return false
		}
	case opRepeat:
		if (a.flags^b.flags)&syntax.NonGreedy != 0 || a.min != b.min || a.max != b.max {
			return false
		}
	case opCapture:
		if a.capIndex != b.capIndex {
			return false
		}
	case opCharClass:
		if len(a.class) != len(b.class) {
			return false
		}
		for i := range a.class {
			if a.class[i] != b.class[i] {
				return false
			}
		}
		return true
	}
	if len(a.subs) != len(b.subs) {
		return false
	}
	for i := range a.subs {
		if !re2Equal(a.subs[i], b.subs[i]) {
			return false
		}
	}
	return true
}

func equalRunes(a, b []rune) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// re2ProgramSize returns RE2::ProgramSize() for re, parsed by Go with
// syntax.Perl (RE2's default options: UTF-8, Perl-like syntax).
func re2ProgramSize(re *syntax.Regexp) int {
	tree := fromSyntax(re)
	suffix := requiredPrefixSuffix(tree)
	return compileSize(simplifyRE2(suffix))
}

// requiredPrefixSuffix is RE2::Init's split of ^literal... into a prefix
// matched by memcmp and the suffix that is compiled: it drops the leading
// ^ anchors and the literal (RE2 2022-06-01 does not keep the anchors on
// the suffix).
func requiredPrefixSuffix(re *reNode) *reNode {
	if re.op != opConcat {
		return re
	}
	i := 0
	for i < len(re.subs) && re.subs[i].op == opBeginText {
		i++
	}
	if i == 0 || i >= len(re.subs) || !re.subs[i].isLiteralish() {
		return re
	}
	i++
	switch rest := re.subs[i:]; len(rest) {
	case 0:
		return &reNode{op: opEmptyMatch, flags: re.flags}
	case 1:
		return rest[0]
	default:
		return &reNode{op: opConcat, flags: re.flags, subs: rest}
	}
}
