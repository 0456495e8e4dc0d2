package allocator

import (
	"errors"
	"math/big"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		in          string
		first, last string
		str         string // canonical String(); "" means same as in
		size        string
		err         string // substring of the error; "" means valid
	}{
		// IPv4 CIDRs.
		{in: "192.0.2.0/24", first: "192.0.2.0", last: "192.0.2.255", size: "256"},
		{in: "192.0.2.7/32", first: "192.0.2.7", last: "192.0.2.7", size: "1"},
		{in: "198.18.0.0/15", first: "198.18.0.0", last: "198.19.255.255", size: "131072"},
		{in: "0.0.0.0/0", first: "0.0.0.0", last: "255.255.255.255", size: "4294967296"},
		{in: "  203.0.113.0/25\t", first: "203.0.113.0", last: "203.0.113.127", str: "203.0.113.0/25", size: "128"},
		// IPv4 ranges.
		{in: "192.0.2.10-192.0.2.20", first: "192.0.2.10", last: "192.0.2.20", size: "11"},
		{in: "192.0.2.10 - 192.0.2.20", first: "192.0.2.10", last: "192.0.2.20", str: "192.0.2.10-192.0.2.20", size: "11"},
		{in: "192.0.2.5-192.0.2.5", first: "192.0.2.5", last: "192.0.2.5", str: "192.0.2.5/32", size: "1"},
		{in: "192.0.2.0-192.0.2.255", first: "192.0.2.0", last: "192.0.2.255", str: "192.0.2.0/24", size: "256"},
		{in: "192.0.2.128-198.51.100.3", first: "192.0.2.128", last: "198.51.100.3", size: "104030596"},
		// IPv6.
		{in: "2001:db8::/64", first: "2001:db8::", last: "2001:db8::ffff:ffff:ffff:ffff", size: "18446744073709551616"},
		{in: "2001:db8::1/128", first: "2001:db8::1", last: "2001:db8::1", size: "1"},
		{in: "2001:db8::/32", first: "2001:db8::", last: "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", size: "79228162514264337593543950336"},
		{in: "::/0", first: "::", last: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", size: "340282366920938463463374607431768211456"},
		{in: "2001:db8::1-2001:db8::ff", first: "2001:db8::1", last: "2001:db8::ff", size: "255"},
		{in: "2001:DB8::1 -\t2001:db8::1", first: "2001:db8::1", last: "2001:db8::1", str: "2001:db8::1/128", size: "1"},
		{in: "2001:db8::-2001:db8::ffff:ffff:ffff:ffff", first: "2001:db8::", last: "2001:db8::ffff:ffff:ffff:ffff", str: "2001:db8::/64", size: "18446744073709551616"},
		{in: "2001:db8:0:0:0:0:0:10/124", first: "2001:db8::10", last: "2001:db8::1f", str: "2001:db8::10/124", size: "16"},

		// Invalid.
		{in: "", err: "empty string"},
		{in: "   ", err: "empty string"},
		{in: "garbage", err: "want a CIDR"},
		{in: "192.0.2.1", err: "write a single address as a /32"},
		{in: "2001:db8::1", err: "write a single address as a /32 or /128"},
		{in: "192.0.2.1/24", err: "host bits are set (the network is 192.0.2.0/24)"},
		{in: "2001:db8::1/64", err: "host bits are set (the network is 2001:db8::/64)"},
		{in: "192.0.2.0/33", err: "192.0.2.0/33"},
		{in: "2001:db8::/129", err: "2001:db8::/129"},
		{in: "192.0.2.0/", err: "invalid address range"},
		{in: "/24", err: "invalid address range"},
		{in: "192.0.2.0/24/24", err: "invalid address range"},
		{in: "192.0.2.0/-1", err: "invalid address range"},
		{in: "192.0.2.0/024", err: "invalid address range"},
		{in: "192.0.2.20-192.0.2.10", err: "start 192.0.2.20 is after end 192.0.2.10"},
		{in: "2001:db8::2-2001:db8::1", err: "start 2001:db8::2 is after end 2001:db8::1"},
		{in: "192.0.2.1-2001:db8::1", err: "different address families"},
		{in: "2001:db8::1-192.0.2.1", err: "different address families"},
		{in: "192.0.2.1-", err: "end:"},
		{in: "-192.0.2.1", err: "start:"},
		{in: "-", err: "start:"},
		{in: "192.0.2.1-192.0.2.2-192.0.2.3", err: "end:"},
		{in: "192.0.2.256-192.0.2.300", err: "start:"},
		{in: "192.000.2.1-192.0.2.2", err: "start:"},
		{in: "fe80::1%eth0-fe80::2%eth0", err: "zones are not allowed"},
		{in: "fe80::%eth0/64", err: "invalid address range"},
		{in: "::ffff:192.0.2.1-::ffff:192.0.2.9", err: "IPv4-mapped"},
		{in: "::ffff:192.0.2.0/120", err: "IPv4-mapped"},
		{in: "::ffff:0:0/96", err: "IPv4-mapped"},
		{in: "192.0.2.0/24,198.51.100.0/24", err: "invalid address range"},
		{in: "192.0.2.0 /24", err: "invalid address range"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseRange(tt.in)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("ParseRange(%q) = %v, want error containing %q", tt.in, r, tt.err)
				}
				if !errors.Is(err, ErrInvalidRange) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseRange(%q) error = %q, want ErrInvalidRange containing %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRange(%q): %v", tt.in, err)
			}
			if r.First != netip.MustParseAddr(tt.first) || r.Last != netip.MustParseAddr(tt.last) {
				t.Errorf("ParseRange(%q) = %s..%s, want %s..%s", tt.in, r.First, r.Last, tt.first, tt.last)
			}
			want := tt.str
			if want == "" {
				want = tt.in
			}
			if got := r.String(); got != want {
				t.Errorf("String() = %q, want %q", got, want)
			}
			if got := r.Size().String(); got != tt.size {
				t.Errorf("Size() = %s, want %s", got, tt.size)
			}
			if err := r.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestParseRanges(t *testing.T) {
	rs, err := ParseRanges([]string{"192.0.2.0/24", "2001:db8::/64", "198.51.100.1-198.51.100.9"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || rs[1].Family() != IPv6 || rs[2].String() != "198.51.100.1-198.51.100.9" {
		t.Fatalf("ParseRanges = %v", rs)
	}
	_, err = ParseRanges([]string{"192.0.2.0/24", "192.0.2.1/24"})
	if err == nil || !errors.Is(err, ErrInvalidRange) || !strings.HasPrefix(err.Error(), "addresses[1]: ") {
		t.Fatalf("ParseRanges with a bad second entry: err = %v", err)
	}
	if rs, err := ParseRanges(nil); err != nil || len(rs) != 0 {
		t.Fatalf("ParseRanges(nil) = %v, %v", rs, err)
	}
}

func mustRange(t testing.TB, s string) Range {
	t.Helper()
	r, err := ParseRange(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRangeOps(t *testing.T) {
	a := netip.MustParseAddr
	r4 := mustRange(t, "192.0.2.10-192.0.2.20")
	r6 := mustRange(t, "2001:db8::/64")

	if r4.Family() != IPv4 || r6.Family() != IPv6 || (Range{}).Family() != "" {
		t.Errorf("Family: %q %q %q", r4.Family(), r6.Family(), (Range{}).Family())
	}
	contains := []struct {
		r    Range
		addr string
		want bool
	}{
		{r4, "192.0.2.10", true},
		{r4, "192.0.2.20", true},
		{r4, "192.0.2.15", true},
		{r4, "192.0.2.9", false},
		{r4, "192.0.2.21", false},
		{r4, "::ffff:192.0.2.15", false}, // other family
		{r4, "2001:db8::1", false},
		{r6, "2001:db8::", true},
		{r6, "2001:db8::ffff:ffff:ffff:ffff", true},
		{r6, "2001:db8:0:1::", false},
		{r6, "192.0.2.15", false},
	}
	for _, c := range contains {
		if got := c.r.Contains(a(c.addr)); got != c.want {
			t.Errorf("%s.Contains(%s) = %v, want %v", c.r, c.addr, got, c.want)
		}
	}
	if r4.Contains(netip.Addr{}) {
		t.Error("Contains(zero Addr) = true")
	}

	overlaps := []struct {
		a, b string
		want bool
	}{
		{"192.0.2.10-192.0.2.20", "192.0.2.20-192.0.2.30", true},
		{"192.0.2.10-192.0.2.20", "192.0.2.21-192.0.2.30", false},
		{"192.0.2.10-192.0.2.20", "192.0.2.0-192.0.2.9", false},
		{"192.0.2.10-192.0.2.20", "192.0.2.0/24", true},
		{"192.0.2.0/24", "192.0.2.15/32", true},
		{"0.0.0.0/0", "::/0", false},
		{"2001:db8::/64", "2001:db8::ffff:0:0:0/80", true},
		{"2001:db8::/64", "2001:db8:0:1::/64", false},
	}
	for _, c := range overlaps {
		ra, rb := mustRange(t, c.a), mustRange(t, c.b)
		if ra.Overlaps(rb) != c.want || rb.Overlaps(ra) != c.want {
			t.Errorf("%s overlaps %s: want %v", c.a, c.b, c.want)
		}
	}
	if r4.Overlaps(Range{}) || (Range{}).Overlaps(r4) {
		t.Error("Overlaps with the zero Range = true")
	}

	invalid := []Range{
		{},
		{First: a("192.0.2.1")},
		{First: a("192.0.2.2"), Last: a("192.0.2.1")},
		{First: a("192.0.2.1"), Last: a("2001:db8::1")},
		{First: a("fe80::1%eth0"), Last: a("fe80::2")},
		{First: a("::ffff:192.0.2.1"), Last: a("::ffff:192.0.2.2")},
	}
	for _, r := range invalid {
		if err := r.Validate(); err == nil || !errors.Is(err, ErrInvalidRange) {
			t.Errorf("Validate(%v..%v) = %v, want ErrInvalidRange", r.First, r.Last, err)
		}
		if r.Size().Sign() != 0 || r.String() != "invalid range" {
			t.Errorf("invalid range %v..%v: Size %s, String %q", r.First, r.Last, r.Size(), r.String())
		}
	}

	// Sizes do not overflow: all of IPv6 has 2^128 addresses.
	all6 := Range{First: a("::"), Last: a("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")}
	if want := new(big.Int).Lsh(big.NewInt(1), 128); all6.Size().Cmp(want) != 0 {
		t.Errorf("Size(::/0) = %s, want %s", all6.Size(), want)
	}
	if all6.String() != "::/0" {
		t.Errorf("String(::/0) = %q", all6.String())
	}

	prefixes := []struct {
		r    string
		want string // "" means not a prefix
	}{
		{"192.0.2.0-192.0.2.127", "192.0.2.0/25"},
		{"192.0.2.1-192.0.2.128", ""},
		{"192.0.2.0-192.0.2.128", ""},
		{"192.0.2.2-192.0.2.3", "192.0.2.2/31"},
		{"192.0.2.1-192.0.2.2", ""},
		{"2001:db8::-2001:db8::ff", "2001:db8::/120"},
		{"2001:db8::100-2001:db8::2ff", ""},
	}
	for _, c := range prefixes {
		p, ok := mustRange(t, c.r).Prefix()
		if got := map[bool]string{true: p.String(), false: ""}[ok]; got != c.want {
			t.Errorf("Prefix(%s) = %q, want %q", c.r, got, c.want)
		}
	}
}

// FuzzParseRange checks that whatever ParseRange accepts is a well-formed
// range whose canonical text parses back to the same range, and that it
// never panics.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{
		"192.0.2.0/24", "192.0.2.7/32", "0.0.0.0/0", "198.18.0.0/15",
		"192.0.2.10-192.0.2.20", " 192.0.2.10 - 192.0.2.20 ", "192.0.2.5-192.0.2.5",
		"2001:db8::/64", "2001:db8::1/128", "::/0", "2001:db8::1-2001:db8::ff",
		"192.0.2.1/24", "192.0.2.20-192.0.2.10", "192.0.2.1-2001:db8::1", "fe80::1%eth0-fe80::2",
		"::ffff:192.0.2.1-::ffff:192.0.2.9", "garbage", "", "-", "/", "1.2.3.4/", "2001:db8::-",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidRange) {
				t.Fatalf("ParseRange(%q) error %v does not wrap ErrInvalidRange", s, err)
			}
			if r != (Range{}) {
				t.Fatalf("ParseRange(%q) returned %v with an error", s, r)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("ParseRange(%q) = %v..%v, which does not validate: %v", s, r.First, r.Last, err)
		}
		if r.First.Zone() != "" || r.First.Is4In6() || r.Last.Less(r.First) || r.First.Is4() != r.Last.Is4() {
			t.Fatalf("ParseRange(%q) = %v..%v: malformed", s, r.First, r.Last)
		}
		if !r.Contains(r.First) || !r.Contains(r.Last) || !r.Overlaps(r) {
			t.Fatalf("%v does not contain its own endpoints", r)
		}
		if r.First != r.Last {
			if r.Contains(r.First.Prev()) && r.First.Prev().IsValid() || r.Contains(r.Last.Next()) && r.Last.Next().IsValid() {
				t.Fatalf("%v contains addresses beyond its endpoints", r)
			}
		}
		// Size agrees with the endpoints.
		want := new(big.Int).Sub(new(big.Int).SetBytes(r.Last.AsSlice()), new(big.Int).SetBytes(r.First.AsSlice()))
		want.Add(want, big.NewInt(1))
		if r.Size().Cmp(want) != 0 {
			t.Fatalf("%v.Size() = %s, want %s", r, r.Size(), want)
		}
		// The canonical text round-trips and is a fixed point.
		txt := r.String()
		r2, err := ParseRange(txt)
		if err != nil || r2 != r {
			t.Fatalf("ParseRange(%q) = %v, %v; want %v (from %q)", txt, r2, err, r, s)
		}
		if r2.String() != txt {
			t.Fatalf("String not canonical: %q then %q", txt, r2.String())
		}
		// A CIDR is printed as one, and exactly covers the range.
		if p, ok := r.Prefix(); ok {
			if p.Masked() != p || !p.Contains(r.First) || !p.Contains(r.Last) || txt != p.String() {
				t.Fatalf("%v: Prefix %v inconsistent", r, p)
			}
		} else if strings.Contains(txt, "/") {
			t.Fatalf("%v: printed as CIDR %q but Prefix says no", r, txt)
		}
	})
}
