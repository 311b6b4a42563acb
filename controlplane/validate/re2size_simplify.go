package validate

import "regexp/syntax"

// simplifyRE2 is RE2's Regexp::Simplify: coalesce runs like a*a+ into one
// counted repetition, then expand counted repetitions and drop empty and
// full classes. Unchanged subtrees are returned as the same pointers, which
// RE2's squashing of nested stars depends on.
func simplifyRE2(re *reNode) *reNode {
	return simplifyNode(coalesce(re))
}

func coalesce(re *reNode) *reNode {
	if len(re.subs) == 0 {
		return re
	}
	subs := make([]*reNode, len(re.subs))
	changed := false
	for i, s := range re.subs {
		subs[i] = coalesce(s)
		changed = changed || subs[i] != s
	}
	if re.op == opConcat {
		merged := false
		for i := 0; i+1 < len(subs); i++ {
			if canCoalesce(subs[i], subs[i+1]) {
				subs[i], subs[i+1] = doCoalesce(subs[i], subs[i+1])
				merged = true
			}
		}
		if merged {
			kept := subs[:0]
			for _, s := range subs {
				if s.op != opEmptyMatch {
					kept = append(kept, s)
				}
			}
			return &reNode{op: opConcat, flags: re.flags, subs: kept}
		}
	}
	if !changed {
		return re
	}
	n := *re
	n.subs = subs
	return &n
}

func isRepeatOp(op reOp) bool {
	return op == opStar || op == opPlus || op == opQuest || op == opRepeat
}

func canCoalesce(r1, r2 *reNode) bool {
	if !isRepeatOp(r1.op) || !isSingleChar(r1.subs[0].op) {
		return false
	}
	x := r1.subs[0]
	if isRepeatOp(r2.op) && re2Equal(x, r2.subs[0]) && (r1.flags^r2.flags)&syntax.NonGreedy == 0 {
		return true
	}
	if re2Equal(x, r2) {
		return true
	}
	return x.op == opLiteral && r2.op == opLiteralString && r2.runes[0] == x.runes[0] &&
		(x.flags^r2.flags)&syntax.FoldCase == 0
}

// doCoalesce returns the replacements for r1 and r2: an empty match and
// the combined repetition, or the repetition and what is left of a literal
// string.
func doCoalesce(r1, r2 *reNode) (*reNode, *reNode) {
	x := r1.subs[0]
	n := &reNode{op: opRepeat, flags: r1.flags, subs: []*reNode{x}}
	switch r1.op {
	case opStar:
		n.min, n.max = 0, -1
	case opPlus:
		n.min, n.max = 1, -1
	case opQuest:
		n.min, n.max = 0, 1
	default:
		n.min, n.max = r1.min, r1.max
	}
	empty := &reNode{op: opEmptyMatch}
	switch r2.op {
	case opStar:
		n.max = -1
	case opPlus:
		n.min++
		n.max = -1
	case opQuest:
		if n.max != -1 {
			n.max++
		}
	case opRepeat:
		n.min += r2.min
		if r2.max == -1 {
			n.max = -1
		} else if n.max != -1 {
			n.max += r2.max
		}
	case opLiteralString:
		k := 1
		for k < len(r2.runes) && r2.runes[k] == x.runes[0] {
			k++
		}
		n.min += k
		if n.max != -1 {
			n.max += k
		}
		if k == len(r2.runes) {
			return empty, n
		}
		rest := append([]rune(nil), r2.runes[k:]...)
		return n, literalOf(rest, r2.foldCase())
	default: // a single character equal to x
		n.min++
		if n.max != -1 {
			n.max++
		}
	}
	return empty, n
}

func simplifyNode(re *reNode) *reNode {
	switch re.op {
	case opConcat, opAlternate, opCapture:
		subs := make([]*reNode, len(re.subs))
		changed := false
		for i, s := range re.subs {
			subs[i] = simplifyNode(s)
			changed = changed || subs[i] != s
		}
		if !changed {
			return re
		}
		n := *re
		n.subs = subs
		return &n
	case opStar, opPlus, opQuest:
		sub := simplifyNode(re.subs[0])
		if sub.op == opEmptyMatch {
			return sub
		}
		if sub == re.subs[0] {
			return re
		}
		if sub.op == re.op && sub.flags == re.flags {
			return sub
		}
		return &reNode{op: re.op, flags: re.flags, subs: []*reNode{sub}}
	case opRepeat:
		sub := simplifyNode(re.subs[0])
		if sub.op == opEmptyMatch {
			return sub
		}
		return simplifyRepeat(sub, re.min, re.max, re.flags)
	case opCharClass:
		if len(re.class) == 0 {
			return &reNode{op: opNoMatch, flags: re.flags}
		}
		if len(re.class) == 1 && re.class[0].lo == 0 && re.class[0].hi == maxRune {
			return &reNode{op: opAnyChar, flags: re.flags}
		}
	}
	return re
}

// simplifyRepeat expands x{min,max} the way RE2 does: x{2,} is xx+,
// x{2,5} is xx(x(x(x)?)?)?.
func simplifyRepeat(x *reNode, min, max int, flags syntax.Flags) *reNode {
	if max == -1 {
		switch min {
		case 0:
			return starPlusOrQuest(opStar, x, flags)
		case 1:
			return starPlusOrQuest(opPlus, x, flags)
		}
		subs := make([]*reNode, min)
		for i := range subs[:min-1] {
			subs[i] = x
		}
		subs[min-1] = starPlusOrQuest(opPlus, x, flags)
		return &reNode{op: opConcat, flags: flags, subs: subs}
	}
	if min == 0 && max == 0 {
		return &reNode{op: opEmptyMatch, flags: flags}
	}
	if min == 1 && max == 1 {
		return x
	}
	var n *reNode
	if min > 0 {
		subs := make([]*reNode, min)
		for i := range subs {
			subs[i] = x
		}
		n = concatOf(subs, flags)
	}
	if max > min {
		suf := starPlusOrQuest(opQuest, x, flags)
		for i := min + 1; i < max; i++ {
			suf = starPlusOrQuest(opQuest, &reNode{op: opConcat, flags: flags, subs: []*reNode{x, suf}}, flags)
		}
		if n == nil {
			n = suf
		} else {
			n = &reNode{op: opConcat, flags: flags, subs: []*reNode{n, suf}}
		}
	}
	if n == nil {
		return &reNode{op: opNoMatch, flags: flags}
	}
	return n
}

// starPlusOrQuest is RE2's Regexp::Star/Plus/Quest constructor, which
// squashes x** and turns any stacked pair of the three into x*.
func starPlusOrQuest(op reOp, sub *reNode, flags syntax.Flags) *reNode {
	if sub.flags == flags {
		if sub.op == op || sub.op == opStar {
			return sub
		}
		if sub.op == opPlus || sub.op == opQuest {
			return &reNode{op: opStar, flags: flags, subs: sub.subs}
		}
	}
	return &reNode{op: op, flags: flags, subs: []*reNode{sub}}
}
