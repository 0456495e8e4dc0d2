package allocator

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
)

// Family is an IP address family. The values match corev1.IPFamily.
type Family string

// The two address families.
const (
	IPv4 Family = "IPv4"
	IPv6 Family = "IPv6"
)

func (f Family) idx() (famIdx, bool) {
	switch f {
	case IPv4:
		return v4, true
	case IPv6:
		return v6, true
	}
	return 0, false
}

// FamilyOf returns the family of a, or "" if a is the zero Addr.
// An IPv4-mapped IPv6 address is IPv6.
func FamilyOf(a netip.Addr) Family {
	if !a.IsValid() {
		return ""
	}
	return famOf(a).family()
}

// ErrInvalidRange is wrapped by every error of ParseRange, ParseRanges and
// Range.Validate.
var ErrInvalidRange = errors.New("invalid address range")

// Range is an inclusive range of addresses of a single family.
// Build it with ParseRange, or check it with Validate.
type Range struct {
	First, Last netip.Addr
}

// ParseRange parses a CIDR ("192.0.2.0/24", "2001:db8::/64") or an inclusive
// start-end range ("192.0.2.10-192.0.2.20", "2001:db8::1 - 2001:db8::ff").
// Surrounding whitespace, and whitespace around '-', is ignored.
//
// Rejected, each with an error saying why:
//   - a CIDR with host bits set ("192.0.2.1/24"): masking it silently would
//     turn a typo for a single address into a whole subnet, so the user is
//     told which network was probably meant instead;
//   - a bare address: write it as a /32 or /128 so the intent is explicit;
//   - start and end of different families, or start after end;
//   - IPv6 zones ("fe80::1%eth0"): a Service address has no zone;
//   - IPv4-mapped IPv6 endpoints ("::ffff:192.0.2.1"): Kubernetes does not
//     accept them as Service addresses; write the IPv4 form instead.
func ParseRange(s string) (Range, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return Range{}, fmt.Errorf("%w: empty string", ErrInvalidRange)
	}
	if strings.Contains(in, "/") {
		p, err := netip.ParsePrefix(in)
		if err != nil {
			return Range{}, fmt.Errorf("%w %q: %w", ErrInvalidRange, s, err)
		}
		if m := p.Masked(); m != p {
			return Range{}, fmt.Errorf("%w %q: host bits are set (the network is %s); a CIDR must name its network, "+
				"and a single address is written %s/%d", ErrInvalidRange, s, m, p.Addr(), p.Addr().BitLen())
		}
		r := prefixRange(p)
		if err := r.check(); err != nil {
			return Range{}, fmt.Errorf("%w %q: %s", ErrInvalidRange, s, err)
		}
		return r, nil
	}
	a, b, ok := strings.Cut(in, "-")
	if !ok {
		return Range{}, fmt.Errorf("%w %q: want a CIDR (192.0.2.0/24) or a start-end range "+
			"(192.0.2.10-192.0.2.20); write a single address as a /32 or /128", ErrInvalidRange, s)
	}
	first, err := netip.ParseAddr(strings.TrimSpace(a))
	if err != nil {
		return Range{}, fmt.Errorf("%w %q: start: %w", ErrInvalidRange, s, err)
	}
	last, err := netip.ParseAddr(strings.TrimSpace(b))
	if err != nil {
		return Range{}, fmt.Errorf("%w %q: end: %w", ErrInvalidRange, s, err)
	}
	r := Range{First: first, Last: last}
	if err := r.check(); err != nil {
		return Range{}, fmt.Errorf("%w %q: %s", ErrInvalidRange, s, err)
	}
	return r, nil
}

// ParseRanges parses each string with ParseRange. The error names the index
// of the first bad entry. Overlapping entries are accepted: a pool's ranges
// are merged when it is added to an Allocator.
func ParseRanges(ss []string) ([]Range, error) {
	out := make([]Range, 0, len(ss))
	for i, s := range ss {
		r, err := ParseRange(s)
		if err != nil {
			return nil, fmt.Errorf("addresses[%d]: %w", i, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// prefixRange returns the addresses of a masked prefix.
func prefixRange(p netip.Prefix) Range {
	f := famOf(p.Addr())
	first := keyOf(p.Addr())
	last := first.or(lowOnes(f.bitLen() - p.Bits()))
	return Range{First: p.Addr(), Last: addrOf(f, last)}
}

// Validate reports whether r could have come from ParseRange.
func (r Range) Validate() error {
	if err := r.check(); err != nil {
		return fmt.Errorf("%w %s-%s: %s", ErrInvalidRange, r.First, r.Last, err)
	}
	return nil
}

// check returns why r is not a valid range, as a bare message.
func (r Range) check() error {
	switch {
	case !r.First.IsValid() || !r.Last.IsValid():
		return errors.New("missing start or end address")
	case r.First.Zone() != "" || r.Last.Zone() != "":
		return errors.New("IPv6 zones are not allowed in a Service address range")
	case r.First.Is4In6() || r.Last.Is4In6():
		return errors.New("IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are not allowed as range endpoints; use the IPv4 form")
	case r.First.Is4() != r.Last.Is4():
		return fmt.Errorf("start %s and end %s are of different address families", r.First, r.Last)
	case r.Last.Less(r.First):
		return fmt.Errorf("start %s is after end %s", r.First, r.Last)
	}
	return nil
}

// Family returns the family of the range, or "" if r.First is invalid.
func (r Range) Family() Family { return FamilyOf(r.First) }

// Contains reports whether a lies within r (numerically; zones are ignored).
func (r Range) Contains(a netip.Addr) bool {
	if !a.IsValid() || !r.First.IsValid() || a.Is4() != r.First.Is4() {
		return false
	}
	k := keyOf(a)
	return !k.less(keyOf(r.First)) && !keyOf(r.Last).less(k)
}

// Overlaps reports whether r and o share at least one address.
func (r Range) Overlaps(o Range) bool {
	if !r.First.IsValid() || !o.First.IsValid() || r.First.Is4() != o.First.Is4() {
		return false
	}
	return !keyOf(o.Last).less(keyOf(r.First)) && !keyOf(r.Last).less(keyOf(o.First))
}

// Size returns the number of addresses in r (2^128 for ::/0), or 0 if r is
// invalid.
func (r Range) Size() *big.Int {
	if r.check() != nil {
		return new(big.Int)
	}
	n := keyOf(r.Last).sub(keyOf(r.First)).big()
	return n.Add(n, big.NewInt(1))
}

// Prefix returns r as a CIDR if it is exactly one.
func (r Range) Prefix() (netip.Prefix, bool) {
	if r.check() != nil {
		return netip.Prefix{}, false
	}
	f := famOf(r.First)
	first := keyOf(r.First)
	d := keyOf(r.Last).sub(first)
	// d+1 must be a power of two (d is a run of low ones) and first aligned to it.
	if !d.and(d.inc()).isZero() || !first.and(d).isZero() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(r.First, f.bitLen()-d.onesCount()), true
}

// String returns the canonical text of r: a CIDR when r is one (a single
// address is a /32 or /128), else "first-last". ParseRange accepts it.
func (r Range) String() string {
	if r.check() != nil {
		return "invalid range"
	}
	if p, ok := r.Prefix(); ok {
		return p.String()
	}
	return r.First.String() + "-" + r.Last.String()
}
