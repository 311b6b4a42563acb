package validate

// compileSize compiles a simplified RE2 tree the way Compiler::Compile
// does and returns the size of the program after Prog::Optimize and
// Prog::Flatten, which is what RE2::ProgramSize() reports.
func compileSize(re *reNode) int {
	anchorStart, re := stripAnchor(re, 0, opBeginText, 0)
	_, re = stripAnchor(re, 0, opEndText, -1)

	c := &compiler{inst: []inst{{op: instFail}}}
	all := c.compileNode(re)
	all = c.cat(all, c.match())
	start := all.begin
	if !anchorStart {
		// The unanchored program starts with a non-greedy .*? loop.
		all = c.cat(c.star(c.byteRange(0x00, 0xFF, false), true), all)
	}
	startUnanchored := all.begin
	if c.failed {
		return maxInst + 1
	}
	if start == 0 && startUnanchored == 0 {
		return 1 // only the Fail instruction
	}
	p := &prog{inst: c.inst, start: start, startUnanchored: startUnanchored}
	p.optimize()
	return p.flatSize()
}

// stripAnchor is RE2's IsAnchorStart (side 0, op BeginText) and
// IsAnchorEnd (side -1, op EndText): an anchor first (last) in the regex,
// looking through concatenations and captures up to depth 4, is removed
// and recorded on the program instead.
func stripAnchor(re *reNode, depth int, op reOp, side int) (bool, *reNode) {
	if depth >= 4 {
		return false, re
	}
	switch re.op {
	case opConcat:
		if len(re.subs) == 0 {
			return false, re
		}
		i := 0
		if side < 0 {
			i = len(re.subs) - 1
		}
		ok, sub := stripAnchor(re.subs[i], depth+1, op, side)
		if !ok {
			return false, re
		}
		subs := append([]*reNode(nil), re.subs...)
		subs[i] = sub
		return true, concatOf(subs, re.flags)
	case opCapture:
		ok, sub := stripAnchor(re.subs[0], depth+1, op, side)
		if !ok {
			return false, re
		}
		n := *re
		n.subs = []*reNode{sub}
		return true, &n
	case op:
		return true, &reNode{op: opLiteralString, flags: re.flags}
	}
	return false, re
}

type prog struct {
	inst                   []inst
	start, startUnanchored uint32

	// Scratch space of the flattening walks: stamp[id] == gen marks the
	// instructions the current walk has reached.
	stamp      []uint32
	gen        uint32
	stk, order []uint32
}

// workq is an insertion-ordered set (RE2's SparseSet as used by Workq).
type workq struct {
	order []uint32
	seen  []bool
}

func (q *workq) add(id uint32) {
	if id != 0 && !q.seen[id] {
		q.seen[id] = true
		q.order = append(q.order, id)
	}
}

// optimize is Prog::Optimize: skip Nops, and mark Alts that loop over any
// byte next to a match as AltMatch. Both passes start at start, not at
// the unanchored start.
func (p *prog) optimize() {
	skipNops := func(j uint32) uint32 {
		for j != 0 && p.inst[j].op == instNop {
			j = p.inst[j].out
		}
		return j
	}
	q := &workq{seen: make([]bool, len(p.inst))}
	q.add(p.start)
	for i := 0; i < len(q.order); i++ {
		ip := &p.inst[q.order[i]]
		ip.out = skipNops(ip.out)
		q.add(ip.out)
		if ip.op == instAlt {
			ip.out1 = skipNops(ip.out1)
			q.add(ip.out1)
		}
	}

	q = &workq{seen: make([]bool, len(p.inst))}
	q.add(p.start)
	for i := 0; i < len(q.order); i++ {
		id := q.order[i]
		ip := &p.inst[id]
		q.add(ip.out)
		if ip.op != instAlt {
			continue
		}
		q.add(ip.out1)
		j, k := p.inst[ip.out], p.inst[ip.out1]
		if (p.isAnyByteLoop(j, id) && p.isMatch(k)) || (p.isMatch(j) && p.isAnyByteLoop(k, id)) {
			ip.op = instAltMatch
		}
	}
}

func (p *prog) isAnyByteLoop(in inst, alt uint32) bool {
	return in.op == instByteRange && in.out == alt && in.lo == 0x00 && in.hi == 0xFF
}

// isMatch reports whether in leads to Match through captures and nops only.
func (p *prog) isMatch(in inst) bool {
	for {
		switch in.op {
		case instCapture, instNop:
			in = p.inst[in.out]
		case instMatch:
			return true
		default:
			return false
		}
	}
}
