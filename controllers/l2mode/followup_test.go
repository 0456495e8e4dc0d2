package l2mode

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestFollowUps(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::3")
	f := followUps{a: t0.Add(followUpDelay), b: t0.Add(2 * followUpDelay), c: t0.Add(followUpDelay)}
	ownedAll := func(netip.Addr) bool { return true }

	if got, next := f.due(t0, ownedAll); len(got) != 0 || next != followUpDelay {
		t.Fatalf("at t0: due %v, next %v; want none, %v", got, next, followUpDelay)
	}
	// c was released meanwhile: dropped, never announced.
	notC := func(ip netip.Addr) bool { return ip != c }
	got, next := f.due(t0.Add(followUpDelay), notC)
	if !slices.Equal(got, []netip.Addr{a}) || next != followUpDelay {
		t.Fatalf("after 1s: due %v, next %v; want [%v], %v", got, next, a, followUpDelay)
	}
	if _, ok := f[c]; ok {
		t.Fatal("a released address kept its follow-up")
	}
	got, next = f.due(t0.Add(3*followUpDelay), ownedAll)
	if !slices.Equal(got, []netip.Addr{b}) || next != 0 || len(f) != 0 {
		t.Fatalf("after 3s: due %v, next %v, left %v; want [%v], 0, none", got, next, f, b)
	}
}
