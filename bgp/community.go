package bgp

import (
	"fmt"
	"strconv"
	"strings"
)

// wellKnownCommunities maps the names accepted by ParseCommunity to their
// values (IANA "BGP Well-known Communities" registry).
var wellKnownCommunities = map[string]uint32{
	"graceful-shutdown":          0xFFFF0000, // RFC 8326
	"accept-own":                 0xFFFF0001, // RFC 7611
	"route-filter-translated-v4": 0xFFFF0002,
	"route-filter-v4":            0xFFFF0003,
	"route-filter-translated-v6": 0xFFFF0004,
	"route-filter-v6":            0xFFFF0005,
	"llgr-stale":                 0xFFFF0006, // RFC 9494
	"no-llgr":                    0xFFFF0007,
	"accept-own-nexthop":         0xFFFF0008,
	"blackhole":                  0xFFFF029A, // RFC 7999
	"no-export":                  0xFFFFFF01, // RFC 1997
	"no-advertise":               0xFFFFFF02,
	"no-export-subconfed":        0xFFFFFF03,
	"local-as":                   0xFFFFFF03, // common alias of no-export-subconfed
	"no-peer":                    0xFFFFFF04, // RFC 3765
}

// wellKnownNames is the canonical name of each well-known value.
var wellKnownNames = func() map[uint32]string {
	m := make(map[uint32]string, len(wellKnownCommunities))
	for name, v := range wellKnownCommunities {
		if name == "local-as" {
			continue
		}
		m[v] = name
	}
	return m
}()

// ParseCommunity parses an RFC 1997 community written as "ASN:value" (two
// decimal 16-bit numbers, e.g. "65000:100") or as a well-known name
// ("no-export", "no-advertise", "no-export-subconfed"/"local-as", "no-peer",
// "blackhole", "graceful-shutdown", "accept-own", "llgr-stale", "no-llgr",
// ...). Names are case-insensitive.
func ParseCommunity(s string) (uint32, error) {
	if v, ok := wellKnownCommunities[strings.ToLower(s)]; ok {
		return v, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf("invalid community %q: want ASN:value or a well-known name", s)
	}
	h, err := parseDecimal(hi, 16)
	if err != nil {
		return 0, fmt.Errorf("invalid community %q: ASN part: %w", s, err)
	}
	l, err := parseDecimal(lo, 16)
	if err != nil {
		return 0, fmt.Errorf("invalid community %q: value part: %w", s, err)
	}
	return uint32(h)<<16 | uint32(l), nil
}

// FormatCommunity is the inverse of ParseCommunity: the well-known name if
// the value has one, "ASN:value" otherwise.
func FormatCommunity(c uint32) string {
	if name, ok := wellKnownNames[c]; ok {
		return name
	}
	return strconv.FormatUint(uint64(c>>16), 10) + ":" + strconv.FormatUint(uint64(c&0xFFFF), 10)
}

// ParseLargeCommunity parses an RFC 8092 large community "A:B:C" made of
// three decimal 32-bit numbers.
func ParseLargeCommunity(s string) (LargeCommunity, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return LargeCommunity{}, fmt.Errorf("invalid large community %q: want A:B:C", s)
	}
	var v [3]uint32
	for i, p := range parts {
		n, err := parseDecimal(p, 32)
		if err != nil {
			return LargeCommunity{}, fmt.Errorf("invalid large community %q: part %d: %w", s, i+1, err)
		}
		v[i] = uint32(n)
	}
	return LargeCommunity{GlobalAdmin: v[0], LocalData1: v[1], LocalData2: v[2]}, nil
}

// String formats the large community as "A:B:C".
func (c LargeCommunity) String() string {
	return strconv.FormatUint(uint64(c.GlobalAdmin), 10) + ":" +
		strconv.FormatUint(uint64(c.LocalData1), 10) + ":" +
		strconv.FormatUint(uint64(c.LocalData2), 10)
}

// parseDecimal accepts only plain ASCII digits (no sign, no spaces, no
// 0x prefix, no underscores), unlike strconv.ParseUint with base 0.
func parseDecimal(s string, bits int) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%q out of range for %d bits", s, bits)
	}
	return n, nil
}
