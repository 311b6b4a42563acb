package validate

// flatSize returns the number of instructions Prog::Flatten emits. Flatten
// turns the Alt trees into lists: every "root" (Fail, the two starts, the
// target of a ByteRange, Capture or EmptyWidth, and any instruction also
// reachable from outside its root's tree) gets a list holding each
// non-Alt, non-Nop instruction its epsilon closure reaches, plus one Nop
// for every other root that closure runs into.
func (p *prog) flatSize() int {
	p.stamp = make([]uint32, len(p.inst))
	roots := make([]bool, len(p.inst))
	roots[0], roots[p.startUnanchored], roots[p.start] = true, true, true
	preds := make([][]uint32, len(p.inst))
	p.markSuccessors(roots, preds)

	var sorted []uint32
	for id, root := range roots {
		if root {
			sorted = append(sorted, uint32(id))
		}
	}
	// In decreasing order, skipping the lowest (the Fail instruction).
	for i := len(sorted) - 1; i > 0; i-- {
		if id := sorted[i]; id != p.startUnanchored && id != p.start {
			p.markDominator(id, roots, preds)
		}
	}

	n := 0
	for id, root := range roots {
		if root {
			n += p.listSize(uint32(id), roots)
		}
	}
	return n
}

// walkEpsilon visits the instructions reachable from root through Alt and
// Nop edges, depth first with out before out1, in RE2's order; visit is
// called once per instruction and returns whether to follow its edges.
func (p *prog) walkEpsilon(root uint32, visit func(id uint32) (follow bool)) {
	p.gen++
	stk := append(p.stk[:0], root)
	defer func() { p.stk = stk }()
	for len(stk) > 0 {
		id := stk[len(stk)-1]
		stk = stk[:len(stk)-1]
		for p.stamp[id] != p.gen {
			p.stamp[id] = p.gen
			if !visit(id) {
				break
			}
			in := p.inst[id]
			switch in.op {
			case instAlt, instAltMatch:
				stk = append(stk, in.out1)
				id = in.out
			case instNop:
				id = in.out
			}
			if in.op != instAlt && in.op != instAltMatch && in.op != instNop {
				break
			}
		}
	}
}

// markSuccessors marks the targets of ByteRange, Capture and EmptyWidth
// as roots and records the predecessors of every Alt's targets.
func (p *prog) markSuccessors(roots []bool, preds [][]uint32) {
	reached := make([]bool, len(p.inst))
	stk := []uint32{p.startUnanchored}
	for len(stk) > 0 {
		id := stk[len(stk)-1]
		stk = stk[:len(stk)-1]
	loop:
		for !reached[id] {
			reached[id] = true
			in := p.inst[id]
			switch in.op {
			case instAlt, instAltMatch:
				preds[in.out] = append(preds[in.out], id)
				preds[in.out1] = append(preds[in.out1], id)
				stk = append(stk, in.out1)
				id = in.out
			case instByteRange, instCapture, instEmptyWidth:
				roots[in.out] = true
				id = in.out
			case instNop:
				id = in.out
			default:
				break loop
			}
		}
	}
}

// markDominator makes a root of every instruction in root's tree that has
// a predecessor outside that tree.
func (p *prog) markDominator(root uint32, roots []bool, preds [][]uint32) {
	order := p.order[:0]
	p.walkEpsilon(root, func(id uint32) bool {
		order = append(order, id)
		return id == root || !roots[id]
	})
	p.order = order
	for _, id := range order {
		for _, pred := range preds[id] {
			if p.stamp[pred] != p.gen { // not reached from root
				roots[id] = true
			}
		}
	}
}

// listSize counts the instructions Flatten emits for root's list.
func (p *prog) listSize(root uint32, roots []bool) int {
	n := 0
	p.walkEpsilon(root, func(id uint32) bool {
		if id != root && roots[id] {
			n++ // a Nop to the other root's list
			return false
		}
		switch p.inst[id].op {
		case instAlt, instNop:
		default: // AltMatch, ByteRange, Capture, EmptyWidth, Match, Fail
			n++
		}
		return true
	})
	return n
}
