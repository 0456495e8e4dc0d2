package bgp

import (
	"strings"
	"testing"
)

func TestParseCommunity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		err  bool
	}{
		{in: "65000:100", want: 65000<<16 | 100},
		{in: "0:0", want: 0},
		{in: "65535:65535", want: 0xFFFFFFFF},
		{in: "no-export", want: 0xFFFFFF01},
		{in: "NO-EXPORT", want: 0xFFFFFF01},
		{in: "no-advertise", want: 0xFFFFFF02},
		{in: "no-export-subconfed", want: 0xFFFFFF03},
		{in: "local-as", want: 0xFFFFFF03},
		{in: "no-peer", want: 0xFFFFFF04},
		{in: "blackhole", want: 0xFFFF029A},
		{in: "graceful-shutdown", want: 0xFFFF0000},
		{in: "accept-own", want: 0xFFFF0001},
		{in: "llgr-stale", want: 0xFFFF0006},
		{in: "no-llgr", want: 0xFFFF0007},
		{in: "007:08", want: 7<<16 | 8},
		{in: "", err: true},
		{in: "65000", err: true},
		{in: "65536:1", err: true},
		{in: "1:65536", err: true},
		{in: "-1:1", err: true},
		{in: "+1:1", err: true},
		{in: "1:2:3", err: true},
		{in: " 1:2", err: true},
		{in: "1:", err: true},
		{in: ":1", err: true},
		{in: "0x10:1", err: true},
		{in: "no_export", err: true},
	} {
		got, err := ParseCommunity(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ParseCommunity(%q) = %#x, %v; want %#x, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestFormatCommunity(t *testing.T) {
	for in, want := range map[uint32]string{
		65000<<16 | 100: "65000:100",
		0xFFFFFF01:      "no-export",
		0xFFFFFF03:      "no-export-subconfed",
		0xFFFF0000:      "graceful-shutdown",
		0xFFFF1234:      "65535:4660",
	} {
		if got := FormatCommunity(in); got != want {
			t.Errorf("FormatCommunity(%#x) = %q, want %q", in, got, want)
		}
	}
}

func TestParseLargeCommunity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want LargeCommunity
		err  bool
	}{
		{in: "4200000001:1:2", want: LargeCommunity{4200000001, 1, 2}},
		{in: "0:0:0"},
		{in: "4294967295:4294967295:4294967295", want: LargeCommunity{^uint32(0), ^uint32(0), ^uint32(0)}},
		{in: "4294967296:0:0", err: true},
		{in: "1:2", err: true},
		{in: "1:2:3:4", err: true},
		{in: "1::3", err: true},
		{in: "a:b:c", err: true},
		{in: "1:2:-3", err: true},
		{in: "", err: true},
	} {
		got, err := ParseLargeCommunity(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ParseLargeCommunity(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// FuzzParseCommunity: never panics, and whatever parses formats back to a
// string that parses to the same value.
func FuzzParseCommunity(f *testing.F) {
	for _, s := range []string{"65000:100", "no-export", "Graceful-Shutdown", "0:0", "65535:65535", "65536:0", "1:2:3", "", ":", "blackhole"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseCommunity(s)
		if err != nil {
			return
		}
		back := FormatCommunity(v)
		v2, err := ParseCommunity(back)
		if err != nil || v2 != v {
			t.Fatalf("%q -> %#x -> %q -> %#x, %v", s, v, back, v2, err)
		}
		if !strings.Contains(back, ":") && wellKnownNames[v] == "" {
			t.Fatalf("%q formatted as %q", s, back)
		}
	})
}

// FuzzParseLargeCommunity: never panics, and String round-trips.
func FuzzParseLargeCommunity(f *testing.F) {
	for _, s := range []string{"4200000001:1:2", "0:0:0", "4294967295:4294967295:4294967295", "4294967296:0:0", "1:2", "::", "1:2:3:4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseLargeCommunity(s)
		if err != nil {
			return
		}
		c2, err := ParseLargeCommunity(c.String())
		if err != nil || c2 != c {
			t.Fatalf("%q -> %v -> %v, %v", s, c, c2, err)
		}
	})
}
