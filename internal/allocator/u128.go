package allocator

import (
	"encoding/binary"
	"math"
	"math/big"
	"math/bits"
	"net/netip"
)

// u128 is an unsigned 128-bit integer. It holds an address (IPv4 in the low
// 32 bits, IPv6 in all 128) or an ordinal inside a pool's usable space, so
// that IPv6 arithmetic never overflows and never allocates.
type u128 struct{ hi, lo uint64 }

var maxU128 = u128{math.MaxUint64, math.MaxUint64}

func u64(x uint64) u128 { return u128{0, x} }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

func (a u128) cmp(b u128) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

func (a u128) isZero() bool { return a.hi == 0 && a.lo == 0 }

func (a u128) isMax() bool { return a == maxU128 }

// add and sub wrap modulo 2^128; callers rule out overflow beforehand.
func (a u128) add(b u128) u128 {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, c)
	return u128{hi, lo}
}

func (a u128) sub(b u128) u128 {
	lo, br := bits.Sub64(a.lo, b.lo, 0)
	hi, _ := bits.Sub64(a.hi, b.hi, br)
	return u128{hi, lo}
}

func (a u128) inc() u128 { return a.add(u128{0, 1}) }
func (a u128) dec() u128 { return a.sub(u128{0, 1}) }

func (a u128) and(b u128) u128 { return u128{a.hi & b.hi, a.lo & b.lo} }
func (a u128) or(b u128) u128  { return u128{a.hi | b.hi, a.lo | b.lo} }

func (a u128) onesCount() int { return bits.OnesCount64(a.hi) + bits.OnesCount64(a.lo) }

func minU128(a, b u128) u128 {
	if b.less(a) {
		return b
	}
	return a
}

func maxOf(a, b u128) u128 {
	if a.less(b) {
		return b
	}
	return a
}

// big returns a as a new big.Int.
func (a u128) big() *big.Int {
	b := new(big.Int).SetUint64(a.hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(a.lo))
}

// lowOnes returns a value with the n lowest bits set (0 <= n <= 128).
func lowOnes(n int) u128 {
	switch {
	case n <= 0:
		return u128{}
	case n < 64:
		return u128{0, 1<<uint(n) - 1}
	case n < 128:
		return u128{1<<uint(n-64) - 1, math.MaxUint64}
	}
	return maxU128
}

// famIdx indexes per-family arrays: 0 is IPv4, 1 is IPv6.
type famIdx uint8

const (
	v4 famIdx = 0
	v6 famIdx = 1
)

func (f famIdx) family() Family {
	if f == v4 {
		return IPv4
	}
	return IPv6
}

func (f famIdx) bitLen() int {
	if f == v4 {
		return 32
	}
	return 128
}

func famOf(a netip.Addr) famIdx {
	if a.Is4() {
		return v4
	}
	return v6
}

// keyOf returns the address as an integer; the zone, if any, is ignored.
func keyOf(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u64(uint64(binary.BigEndian.Uint32(b[:])))
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// addrOf is the inverse of keyOf for family f.
func addrOf(f famIdx, k u128) netip.Addr {
	if f == v4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(k.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.AddrFrom16(b)
}
