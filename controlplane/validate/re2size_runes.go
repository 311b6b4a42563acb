package validate

// RE2's rune-range compiler (forward UTF-8): a class becomes a trie of byte
// ranges that shares common leading bytes (AddSuffixRecursive) and caches
// common continuation-byte suffixes (rune_cache_).

func (c *compiler) beginRange() {
	c.runeCache = map[uint64]uint32{}
	c.runeRange = frag{}
}

func (c *compiler) uncachedSuffix(lo, hi byte, fold bool, next uint32) uint32 {
	f := c.byteRange(lo, hi, fold)
	if next != 0 {
		c.patch(f.end, next)
	} else {
		c.runeRange.end = c.appendList(c.runeRange.end, f.end)
	}
	return f.begin
}

func runeCacheKey(lo, hi byte, fold bool, next uint32) uint64 {
	k := uint64(next)<<17 | uint64(lo)<<9 | uint64(hi)<<1
	if fold {
		k |= 1
	}
	return k
}

func (c *compiler) cachedSuffix(lo, hi byte, fold bool, next uint32) uint32 {
	key := runeCacheKey(lo, hi, fold, next)
	if id, ok := c.runeCache[key]; ok {
		return id
	}
	id := c.uncachedSuffix(lo, hi, fold, next)
	c.runeCache[key] = id
	return id
}

func (c *compiler) isCachedSuffix(id uint32) bool {
	in := c.inst[id]
	_, ok := c.runeCache[runeCacheKey(in.lo, in.hi, in.fold, in.out)]
	return ok
}

func (c *compiler) addSuffix(id uint32) {
	if c.failed {
		return
	}
	if c.runeRange.begin == 0 {
		c.runeRange.begin = id
		return
	}
	c.runeRange.begin = c.addSuffixRecursive(c.runeRange.begin, id)
}

func (c *compiler) addSuffixRecursive(root, id uint32) uint32 {
	f, found := c.findByteRange(root, id)
	if !found {
		alt, ok := c.alloc(instAlt)
		if !ok {
			return 0
		}
		c.inst[alt].out, c.inst[alt].out1 = root, id
		return alt
	}
	var br uint32
	switch {
	case f.end.head == 0:
		br = root
	case f.end.head&1 != 0:
		br = c.inst[f.begin].out1
	default:
		br = c.inst[f.begin].out
	}
	if c.isCachedSuffix(br) {
		// A cached suffix must not change: clone the head.
		clone, ok := c.alloc(instByteRange)
		if !ok {
			return 0
		}
		orig := c.inst[br]
		c.inst[clone] = inst{op: instByteRange, lo: orig.lo, hi: orig.hi, fold: orig.fold, out: orig.out}
		br = clone
		switch {
		case f.end.head == 0:
			root = br
		case f.end.head&1 != 0:
			c.inst[f.begin].out1 = br
		default:
			c.inst[f.begin].out = br
		}
	}
	out := c.inst[id].out
	if !c.isCachedSuffix(id) {
		// RE2 frees the head, which it allocated last.
		c.inst[id] = inst{}
		c.inst = c.inst[:len(c.inst)-1]
	}
	out = c.addSuffixRecursive(c.inst[br].out, out)
	if out == 0 {
		return 0
	}
	c.inst[br].out = out
	return root
}

func (c *compiler) byteRangeEqual(id1, id2 uint32) bool {
	a, b := c.inst[id1], c.inst[id2]
	return a.lo == b.lo && a.hi == b.hi && a.fold == b.fold
}

// findByteRange looks for id's byte range at the head of the trie rooted
// at root; the returned fragment says which out field holds it.
func (c *compiler) findByteRange(root, id uint32) (frag, bool) {
	if c.inst[root].op == instByteRange {
		return frag{begin: root}, c.byteRangeEqual(root, id)
	}
	if c.inst[root].op == instAlt {
		if out1 := c.inst[root].out1; c.byteRangeEqual(out1, id) {
			return frag{begin: root, end: mkPatch(root<<1 | 1)}, true
		}
	}
	return frag{}, false
}

func (c *compiler) addRuneRange(lo, hi rune, fold bool) {
	if lo > hi {
		return
	}
	if lo == 0x80 && hi == 0x10FFFF {
		c.add80To10FFFF()
		return
	}
	// Split into ranges whose UTF-8 encodings have the same length.
	for _, m := range [...]rune{0x7F, 0x7FF, 0xFFFF} {
		if lo <= m && m < hi {
			c.addRuneRange(lo, m, fold)
			c.addRuneRange(m+1, hi, fold)
			return
		}
	}
	if hi < 0x80 {
		c.addSuffix(c.uncachedSuffix(byte(lo), byte(hi), fold, 0))
		return
	}
	// Split into ranges that agree on their leading bytes.
	for i := 1; i < 4; i++ {
		m := rune(1)<<(6*i) - 1
		if lo&^m != hi&^m {
			if lo&m != 0 {
				c.addRuneRange(lo, lo|m, fold)
				c.addRuneRange((lo|m)+1, hi, fold)
				return
			}
			if hi&m != m {
				c.addRuneRange(lo, (hi&^m)-1, fold)
				c.addRuneRange(hi&^m, hi, fold)
				return
			}
		}
	}
	ulo, uhi := encodeRune(lo), encodeRune(hi)
	n := len(ulo)
	var id uint32
	for i := n - 1; i >= 0; i-- {
		// Forward UTF-8: cache the last byte and inner byte ranges, never
		// the leading byte.
		if i == n-1 || (ulo[i] < uhi[i] && i != 0) {
			id = c.cachedSuffix(ulo[i], uhi[i], false, id)
		} else {
			id = c.uncachedSuffix(ulo[i], uhi[i], false, id)
		}
	}
	c.addSuffix(id)
}

// add80To10FFFF is RE2's shortcut for all non-ASCII runes, which accepts
// overlong and out-of-range sequences to stay small.
func (c *compiler) add80To10FFFF() {
	cont1 := c.uncachedSuffix(0x80, 0xBF, false, 0)
	c.addSuffix(c.uncachedSuffix(0xC2, 0xDF, false, cont1))
	cont2 := c.uncachedSuffix(0x80, 0xBF, false, cont1)
	c.addSuffix(c.uncachedSuffix(0xE0, 0xEF, false, cont2))
	cont3 := c.uncachedSuffix(0x80, 0xBF, false, cont2)
	c.addSuffix(c.uncachedSuffix(0xF0, 0xF4, false, cont3))
}
