package validate

// A port of the instruction-allocating parts of RE2's compiler
// (re2/compile.cc, forward UTF-8 programs only). Instruction numbering,
// patch lists and the rune-range suffix cache follow RE2 exactly, because
// Prog::Flatten's result depends on them.

type instOp uint8

const (
	instFail instOp = iota
	instAlt
	instAltMatch
	instByteRange
	instCapture
	instEmptyWidth
	instMatch
	instNop
)

type inst struct {
	op        instOp
	out, out1 uint32
	lo, hi    byte
	fold      bool
}

// patchList threads the dangling exits of a fragment through their out
// fields: p>>1 is the instruction, p&1 selects out1.
type patchList struct{ head, tail uint32 }

type frag struct {
	begin    uint32
	end      patchList
	nullable bool
}

// maxInst approximates RE2's instruction budget for the forward program
// with the default max_mem (two thirds of 8 MiB, 8 bytes per instruction);
// past it RE2 fails to compile the regex and so does this port.
const maxInst = (8 << 20) * 2 / 3 / 8

type compiler struct {
	inst      []inst
	failed    bool
	runeCache map[uint64]uint32
	runeRange frag
}

func (c *compiler) setOut(id, v uint32) { c.inst[id].out = v }

func (c *compiler) patch(l patchList, v uint32) {
	for l.head != 0 {
		ip := &c.inst[l.head>>1]
		if l.head&1 != 0 {
			l.head, ip.out1 = ip.out1, v
		} else {
			l.head, ip.out = ip.out, v
		}
	}
}

func (c *compiler) appendList(l1, l2 patchList) patchList {
	if l1.head == 0 {
		return l2
	}
	if l2.head == 0 {
		return l1
	}
	ip := &c.inst[l1.tail>>1]
	if l1.tail&1 != 0 {
		ip.out1 = l2.head
	} else {
		ip.out = l2.head
	}
	return patchList{l1.head, l2.tail}
}

func mkPatch(p uint32) patchList { return patchList{p, p} }

func (c *compiler) alloc(op instOp) (uint32, bool) {
	if c.failed || len(c.inst)+1 > maxInst {
		c.failed = true
		return 0, false
	}
	c.inst = append(c.inst, inst{op: op})
	return uint32(len(c.inst) - 1), true
}

func (c *compiler) cat(a, b frag) frag {
	if a.begin == 0 || b.begin == 0 {
		return frag{}
	}
	if begin := c.inst[a.begin]; begin.op == instNop && a.end.head == a.begin<<1 && begin.out == 0 {
		c.patch(a.end, b.begin)
		return b
	}
	c.patch(a.end, b.begin)
	return frag{a.begin, b.end, a.nullable && b.nullable}
}

func (c *compiler) alt(a, b frag) frag {
	if a.begin == 0 {
		return b
	}
	if b.begin == 0 {
		return a
	}
	id, ok := c.alloc(instAlt)
	if !ok {
		return frag{}
	}
	c.inst[id].out, c.inst[id].out1 = a.begin, b.begin
	return frag{id, c.appendList(a.end, b.end), a.nullable || b.nullable}
}

// loop allocates the Alt of a repetition: one branch goes to a, the other
// is left dangling.
func (c *compiler) loop(a frag, nongreedy bool) (uint32, patchList, bool) {
	id, ok := c.alloc(instAlt)
	if !ok {
		return 0, patchList{}, false
	}
	if nongreedy {
		c.inst[id].out1 = a.begin
		return id, mkPatch(id << 1), true
	}
	c.inst[id].out = a.begin
	return id, mkPatch(id<<1 | 1), true
}

func (c *compiler) plus(a frag, nongreedy bool) frag {
	id, pl, ok := c.loop(a, nongreedy)
	if !ok {
		return frag{}
	}
	c.patch(a.end, id)
	return frag{a.begin, pl, a.nullable}
}

func (c *compiler) star(a frag, nongreedy bool) frag {
	// RE2 compiles a nullable x* as (x+)? to keep priorities right.
	if a.nullable {
		return c.quest(c.plus(a, nongreedy), nongreedy)
	}
	id, pl, ok := c.loop(a, nongreedy)
	if !ok {
		return frag{}
	}
	c.patch(a.end, id)
	return frag{id, pl, true}
}

func (c *compiler) quest(a frag, nongreedy bool) frag {
	if a.begin == 0 {
		return c.nop()
	}
	id, pl, ok := c.loop(a, nongreedy)
	if !ok {
		return frag{}
	}
	return frag{id, c.appendList(pl, a.end), true}
}

func (c *compiler) byteRange(lo, hi byte, fold bool) frag {
	id, ok := c.alloc(instByteRange)
	if !ok {
		return frag{}
	}
	c.inst[id].lo, c.inst[id].hi, c.inst[id].fold = lo, hi, fold
	return frag{id, mkPatch(id << 1), false}
}

func (c *compiler) nop() frag {
	id, ok := c.alloc(instNop)
	if !ok {
		return frag{}
	}
	return frag{id, mkPatch(id << 1), true}
}

func (c *compiler) match() frag {
	id, ok := c.alloc(instMatch)
	if !ok {
		return frag{}
	}
	return frag{begin: id}
}

func (c *compiler) emptyWidth() frag {
	id, ok := c.alloc(instEmptyWidth)
	if !ok {
		return frag{}
	}
	return frag{id, mkPatch(id << 1), true}
}

func (c *compiler) capture(a frag) frag {
	if a.begin == 0 {
		return frag{}
	}
	id, ok := c.alloc(instCapture)
	if !ok {
		return frag{}
	}
	id1, ok := c.alloc(instCapture)
	if !ok {
		return frag{}
	}
	c.inst[id].out = a.begin
	c.patch(a.end, id1)
	return frag{id, mkPatch(id1 << 1), a.nullable}
}

func (c *compiler) literal(r rune, fold bool) frag {
	if r < 0x80 {
		return c.byteRange(byte(r), byte(r), fold)
	}
	buf := encodeRune(r)
	f := c.byteRange(buf[0], buf[0], false)
	for _, b := range buf[1:] {
		f = c.cat(f, c.byteRange(b, b, false))
	}
	return f
}

// compileNode is RE2's Compiler::PostVisit over a simplified tree.
func (c *compiler) compileNode(re *reNode) frag {
	if c.failed {
		return frag{}
	}
	switch re.op {
	case opNoMatch:
		return frag{}
	case opEmptyMatch:
		return c.nop()
	case opConcat, opAlternate:
		f := c.compileNode(re.subs[0])
		for _, s := range re.subs[1:] {
			g := c.compileNode(s)
			if re.op == opConcat {
				f = c.cat(f, g)
			} else {
				f = c.alt(f, g)
			}
		}
		return f
	case opStar:
		return c.star(c.compileNode(re.subs[0]), re.nonGreedy())
	case opPlus:
		return c.plus(c.compileNode(re.subs[0]), re.nonGreedy())
	case opQuest:
		return c.quest(c.compileNode(re.subs[0]), re.nonGreedy())
	case opLiteral, opLiteralString:
		if len(re.runes) == 0 {
			return c.nop()
		}
		f := c.literal(re.runes[0], re.foldCase())
		for _, r := range re.runes[1:] {
			f = c.cat(f, c.literal(r, re.foldCase()))
		}
		return f
	case opAnyChar:
		c.beginRange()
		c.addRuneRange(0, maxRune, false)
		return c.runeRange
	case opAnyByte:
		return c.byteRange(0x00, 0xFF, false)
	case opCharClass:
		return c.charClass(re.class)
	case opCapture:
		return c.capture(c.compileNode(re.subs[0]))
	case opBeginLine, opEndLine, opBeginText, opEndText, opWordBoundary, opNoWordBoundary:
		return c.emptyWidth()
	}
	c.failed = true // opRepeat never survives simplification
	return frag{}
}

// charClass compiles a class as an alternation of UTF-8 byte sequences,
// with RE2's ASCII case-folding shortcut.
func (c *compiler) charClass(class []runeRange) frag {
	if len(class) == 0 {
		c.failed = true
		return frag{}
	}
	foldASCII := foldsASCII(class)
	c.beginRange()
	for _, r := range class {
		if foldASCII && 'A' <= r.lo && r.hi <= 'Z' {
			continue
		}
		fold := foldASCII
		if (r.lo <= 'A' && 'z' <= r.hi) || r.hi < 'A' || 'z' < r.lo || ('Z' < r.lo && r.hi < 'a') {
			fold = false
		}
		c.addRuneRange(r.lo, r.hi, fold)
	}
	return c.runeRange
}

// foldsASCII reports whether the class holds the same letters in A-Z as in
// a-z.
func foldsASCII(class []runeRange) bool {
	var upper, lower uint32
	for _, r := range class {
		for x := max(r.lo, 'A'); x <= min(r.hi, 'Z'); x++ {
			upper |= 1 << (x - 'A')
		}
		for x := max(r.lo, 'a'); x <= min(r.hi, 'z'); x++ {
			lower |= 1 << (x - 'a')
		}
	}
	return upper == lower
}

// encodeRune is RE2's runetochar: UTF-8, except that surrogates are encoded
// like any other three-byte rune (Go's encoder would replace them).
func encodeRune(r rune) []byte {
	switch {
	case r < 0x80:
		return []byte{byte(r)}
	case r < 0x800:
		return []byte{0xC0 | byte(r>>6), 0x80 | byte(r)&0x3F}
	case r < 0x10000:
		return []byte{0xE0 | byte(r>>12), 0x80 | byte(r>>6)&0x3F, 0x80 | byte(r)&0x3F}
	}
	return []byte{0xF0 | byte(r>>18), 0x80 | byte(r>>12)&0x3F, 0x80 | byte(r>>6)&0x3F, 0x80 | byte(r)&0x3F}
}
