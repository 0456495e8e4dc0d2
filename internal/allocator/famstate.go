package allocator

import (
	"slices"
	"sort"
)

// Per-family span arithmetic: merged ranges, ordinals of usable
// addresses, and the avoidBuggyIPs compaction of IPv4 keys.

// mergeRanges turns valid ranges of one family into sorted, disjoint,
// non-adjacent key intervals.
func mergeRanges(rs []Range) []span {
	if len(rs) == 0 {
		return nil
	}
	ivs := make([]span, 0, len(rs))
	for _, r := range rs {
		ivs = append(ivs, span{first: keyOf(r.First), last: keyOf(r.Last)})
	}
	slices.SortFunc(ivs, func(x, y span) int { return x.first.cmp(y.first) })
	out := ivs[:1]
	for _, iv := range ivs[1:] {
		cur := &out[len(out)-1]
		if cur.last.isMax() || !cur.last.inc().less(iv.first) {
			cur.last = maxOf(cur.last, iv.last)
			continue
		}
		out = append(out, iv)
	}
	return out
}

func newFamState(f famIdx, buggy bool, merged []span) *famState {
	fs := &famState{fam: f, buggy: buggy, merged: merged}
	var pieces []span
	for _, m := range merged {
		switch {
		case buggy:
			if lo, hi, ok := trimBuggy(m.first, m.last); ok {
				pieces = append(pieces, span{first: lo, last: hi})
			}
		case f == v6:
			if m.first.less(mappedFirst) {
				pieces = append(pieces, span{first: m.first, last: minU128(m.last, mappedFirst.dec())})
			}
			if mappedLast.less(m.last) {
				pieces = append(pieces, span{first: maxOf(m.first, mappedLast.inc()), last: m.last})
			}
		default:
			pieces = append(pieces, m)
		}
	}
	var off u128
	for _, sp := range pieces {
		sp.off = off
		if buggy {
			fs.last = off.add(u64(compact(sp.last) - compact(sp.first)))
		} else {
			fs.last = off.add(sp.last.sub(sp.first))
		}
		// Wraps to 0 only after the last span of an ::/0 pool.
		off = fs.last.inc()
		fs.spans = append(fs.spans, sp)
	}
	return fs
}

// spanIndex returns the index of the span containing k if k is usable, else -1.
func (fs *famState) spanIndex(k u128) int {
	i := sort.Search(len(fs.spans), func(i int) bool { return !fs.spans[i].last.less(k) })
	if i == len(fs.spans) || k.less(fs.spans[i].first) || (fs.buggy && !usableV4(k)) {
		return -1
	}
	return i
}

// ord returns the ordinal of the usable key k in span i.
func (fs *famState) ord(i int, k u128) u128 {
	sp := fs.spans[i]
	if fs.buggy {
		return sp.off.add(u64(compact(k) - compact(sp.first)))
	}
	return sp.off.add(k.sub(sp.first))
}

// keyAt is the inverse of ord.
func (fs *famState) keyAt(o u128) u128 {
	i := sort.Search(len(fs.spans), func(i int) bool { return o.less(fs.spans[i].off) }) - 1
	sp := fs.spans[i]
	d := o.sub(sp.off)
	if fs.buggy {
		return expand(compact(sp.first) + d.lo)
	}
	return sp.first.add(d)
}

// usableV4 reports whether an IPv4 key does not end in .0 or .255.
func usableV4(k u128) bool {
	o := k.lo & 0xff
	return o != 0 && o != 0xff
}

// compact numbers the IPv4 addresses not ending in .0 or .255 consecutively
// (254 per /24); expand is its inverse.
func compact(k u128) uint64 { return (k.lo>>8)*254 + (k.lo & 0xff) - 1 }
func expand(j uint64) u128  { return u64((j/254)<<8 | (j%254 + 1)) }

// trimBuggy shrinks the IPv4 key interval [a, b] to its first and last
// addresses not ending in .0 or .255.
func trimBuggy(a, b u128) (u128, u128, bool) {
	x, y := a.lo, b.lo
	switch x & 0xff {
	case 0:
		x++
	case 0xff:
		x += 2
	}
	switch y & 0xff {
	case 0xff:
		y--
	case 0:
		if y < 2 {
			return u128{}, u128{}, false
		}
		y -= 2
	}
	if x > y {
		return u128{}, u128{}, false
	}
	return u64(x), u64(y), true
}
