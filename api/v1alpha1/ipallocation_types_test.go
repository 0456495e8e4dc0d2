package v1alpha1

import (
	"net/netip"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestAllocationName(t *testing.T) {
	for _, tc := range []struct{ addr, name string }{
		{"203.0.113.7", "203.0.113.7"},
		{"2001:db8::7", "2001-db8--7"},
		{"2001:db8:ffff::", "2001-db8-ffff--0"},
		{"::1", "0--1"},
		{"::", "0--0"},
		{"0:1::", "0-1--0"},
		{"::ffff:198.51.100.1", "0--ffff-198.51.100.1"},
		{"2001:db8:1:2:3:4:5:6", "2001-db8-1-2-3-4-5-6"},
	} {
		if got := AllocationName(tc.addr); got != tc.name {
			t.Errorf("AllocationName(%s) = %s, want %s", tc.addr, got, tc.name)
		}
	}
}

// addressOf inverts AllocationName, to show that no two addresses share a name.
func addressOf(name string) string {
	if strings.HasPrefix(name, "0--") {
		name = name[1:]
	}
	if strings.HasSuffix(name, "--0") {
		name = name[:len(name)-1]
	}
	if strings.Contains(name, "-") {
		name = strings.ReplaceAll(name, "-", ":")
	}
	return name
}

// FuzzAllocationName checks, for any address, that its name is one the API
// server accepts and that it leads back to the address alone.
func FuzzAllocationName(f *testing.F) {
	for _, s := range []string{"2001:db8::", "::1", "::", "0:1::", "192.0.2.1", "::ffff:192.0.2.1", "1:0:0:1::"} {
		a := netip.MustParseAddr(s)
		b := a.As16()
		f.Add(b[:], a.Is4())
	}
	f.Fuzz(func(t *testing.T, raw []byte, four bool) {
		if len(raw) < 16 {
			return
		}
		a := netip.AddrFrom16([16]byte(raw[:16]))
		if four {
			a = netip.AddrFrom4([4]byte(raw[:4]))
		}
		s := a.String()
		name := AllocationName(s)
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Fatalf("AllocationName(%s) = %q, not a valid object name: %v", s, name, errs)
		}
		if back := addressOf(name); back != s {
			t.Fatalf("AllocationName(%s) = %q leads back to %s", s, name, back)
		}
	})
}
