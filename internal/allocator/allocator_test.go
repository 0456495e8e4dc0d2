package allocator

import (
	"errors"
	"math/big"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

var ip = netip.MustParseAddr

func pool(t testing.TB, name string, avoid bool, ranges ...string) Pool {
	t.Helper()
	rs, err := ParseRanges(ranges)
	if err != nil {
		t.Fatal(err)
	}
	return Pool{Name: name, Ranges: rs, AvoidBuggyIPs: avoid}
}

func mustCheck(t testing.TB, a *Allocator) {
	t.Helper()
	if err := a.check(); err != nil {
		t.Fatal(err)
	}
}

func allocN(t testing.TB, a *Allocator, p string, fam Family, n int) []string {
	t.Helper()
	var out []string
	for range n {
		addr, err := a.Allocate(p, fam)
		if err != nil {
			t.Fatalf("Allocate(%s, %s) after %v: %v", p, fam, out, err)
		}
		out = append(out, addr.String())
	}
	mustCheck(t, a)
	return out
}

func wantErr(t testing.TB, err, target error, substr string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not mention %q", err, substr)
	}
}

// stat is Stats for one family as plain numbers (-1 for a missing family).
type stat struct{ total, allocated, available, orphaned int64 }

func statsOf(a *Allocator, p string, fam Family) stat {
	s, ok := a.Stats(p)[fam]
	if !ok {
		return stat{-1, -1, -1, -1}
	}
	return stat{s.Total.Int64(), s.Allocated.Int64(), s.Available.Int64(), s.Orphaned.Int64()}
}

func TestAllocateLowestFreeAndExhaustion(t *testing.T) {
	a := New()
	a.SetPool(pool(t, "p", false, "192.0.2.8/30", "192.0.2.0-192.0.2.1", "2001:db8::10/127"))

	got := allocN(t, a, "p", IPv4, 6)
	want := []string{"192.0.2.0", "192.0.2.1", "192.0.2.8", "192.0.2.9", "192.0.2.10", "192.0.2.11"}
	if !slices.Equal(got, want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	_, err := a.Allocate("p", IPv4)
	wantErr(t, err, ErrPoolExhausted, `pool "p"`)

	if got := allocN(t, a, "p", IPv6, 2); !slices.Equal(got, []string{"2001:db8::10", "2001:db8::11"}) {
		t.Fatalf("IPv6 allocated %v", got)
	}
	if st := statsOf(a, "p", IPv4); st != (stat{6, 6, 0, 0}) {
		t.Fatalf("IPv4 stats %+v", st)
	}

	// Releases in the middle are reused lowest first.
	a.Release(ip("192.0.2.9"))
	a.Release(ip("192.0.2.1"))
	a.Release(ip("192.0.2.1")) // twice: no-op
	a.Release(ip("203.0.113.1"))
	mustCheck(t, a)
	if st := statsOf(a, "p", IPv4); st != (stat{6, 4, 2, 0}) {
		t.Fatalf("IPv4 stats after releases %+v", st)
	}
	if got := allocN(t, a, "p", IPv4, 2); !slices.Equal(got, []string{"192.0.2.1", "192.0.2.9"}) {
		t.Fatalf("reallocated %v", got)
	}
	if h, ok := a.Holder(ip("192.0.2.9")); !ok || h != "p" {
		t.Fatalf("Holder = %q, %v", h, ok)
	}
	if _, ok := a.Holder(ip("192.0.2.2")); ok {
		t.Fatal("Holder of a free address")
	}
}

func TestAllocateDeterministic(t *testing.T) {
	run := func() []string {
		a := New()
		a.SetPool(pool(t, "p", true, "198.18.0.250-198.18.1.10", "2001:db8::/120"))
		var out []string
		for i := range 40 {
			fam := []Family{IPv4, IPv6}[i%2]
			addr, err := a.Allocate("p", fam)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, addr.String())
			if i%3 == 0 {
				a.Release(addr)
			}
		}
		return out
	}
	first := run()
	for range 3 {
		if again := run(); !slices.Equal(first, again) {
			t.Fatalf("runs differ:\n%v\n%v", first, again)
		}
	}
}

func TestAllocateErrors(t *testing.T) {
	a := New()
	a.SetPool(pool(t, "v4only", false, "192.0.2.0/30"))
	a.SetPool(pool(t, "allbuggy", true, "192.0.2.255-198.51.100.0", "2001:db8::/128"))
	a.SetPool(Pool{Name: "empty"})

	_, err := a.Allocate("nope", IPv4)
	wantErr(t, err, ErrUnknownPool, `"nope"`)
	_, err = a.Allocate("v4only", IPv6)
	wantErr(t, err, ErrNoRangeForFamily, "no IPv6 range")
	_, err = a.Allocate("v4only", "IPv5")
	wantErr(t, err, ErrNoRangeForFamily, `unknown address family "IPv5"`)
	_, err = a.Allocate("empty", IPv4)
	wantErr(t, err, ErrNoRangeForFamily, "no IPv4 range")

	// 192.0.2.255-198.51.100.0 is not all buggy, so use a pool that is.
	a.SetPool(pool(t, "allbuggy", true, "192.0.2.255/32", "198.51.100.0/32", "2001:db8::/128"))
	_, err = a.Allocate("allbuggy", IPv4)
	wantErr(t, err, ErrNoRangeForFamily, "avoidBuggyIPs excludes every address")
	if st := statsOf(a, "allbuggy", IPv4); st != (stat{0, 0, 0, 0}) {
		t.Fatalf("stats of an all-buggy family %+v", st)
	}
	if addr, err := a.Allocate("allbuggy", IPv6); err != nil || addr != ip("2001:db8::") {
		t.Fatalf("IPv6 from allbuggy: %v %v", addr, err)
	}
	_, err = a.Allocate("allbuggy", IPv6)
	wantErr(t, err, ErrPoolExhausted, "all 1 usable IPv6 addresses are in use")

	if a.Stats("nope") != nil {
		t.Fatal("Stats of an unknown pool is not nil")
	}
	if st := a.Stats("empty"); len(st) != 0 {
		t.Fatalf("Stats of a pool without ranges: %v", st)
	}
}

func TestReserve(t *testing.T) {
	a := New()
	a.SetPool(pool(t, "a", false, "192.0.2.0/28", "2001:db8::/64"))
	a.SetPool(pool(t, "b", false, "198.51.100.0/28"))

	if err := a.Reserve("a", ip("192.0.2.5")); err != nil {
		t.Fatal(err)
	}
	if err := a.Reserve("a", ip("2001:db8::ffff:ffff:ffff:ffff")); err != nil {
		t.Fatal(err)
	}
	err := a.Reserve("a", ip("192.0.2.5"))
	wantErr(t, err, ErrInUse, `192.0.2.5 is already held by pool "a"`)
	var inUse *InUseError
	if !errors.As(err, &inUse) || inUse.Holder != "a" || inUse.Addr != ip("192.0.2.5") {
		t.Fatalf("errors.As InUseError: %+v", inUse)
	}
	wantErr(t, a.Reserve("a", ip("198.51.100.1")), ErrNotInPool, `198.51.100.1 in pool "a"`)
	wantErr(t, a.Reserve("a", ip("2001:db8:0:1::")), ErrNotInPool, "2001:db8:0:1::")
	wantErr(t, a.Reserve("x", ip("192.0.2.1")), ErrUnknownPool, `"x"`)
	wantErr(t, a.Reserve("a", netip.Addr{}), ErrInvalidAddress, "zero address")
	wantErr(t, a.Reserve("a", ip("2001:db8::1%eth0")), ErrInvalidAddress, "zone")
	wantErr(t, a.Reserve("a", ip("::ffff:192.0.2.1")), ErrInvalidAddress, "IPv4-mapped")
	wantErr(t, a.ReserveAny("a", ip("::ffff:192.0.2.1")), ErrInvalidAddress, "IPv4-mapped")

	// Allocation steps over reserved addresses.
	got := allocN(t, a, "a", IPv4, 15)
	if slices.Contains(got, "192.0.2.5") || got[5] != "192.0.2.6" {
		t.Fatalf("allocated %v", got)
	}
	if st := statsOf(a, "a", IPv4); st != (stat{16, 16, 0, 0}) {
		t.Fatalf("stats %+v", st)
	}
	if a.InPool("a", ip("192.0.2.5")) != true || a.InPool("b", ip("192.0.2.5")) || a.InPool("x", ip("192.0.2.5")) {
		t.Fatal("InPool")
	}
}

func TestReserveAnyAndRebuild(t *testing.T) {
	// Rebuild as the controller does at start: IPAllocations may be read
	// before their pools, and may lie outside their pool after an edit.
	a := New()
	for _, s := range []string{"192.0.2.3", "192.0.2.200", "2001:db8::7"} {
		if err := a.ReserveAny("p", ip(s)); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, a.ReserveAny("q", ip("192.0.2.3")), ErrInUse, `held by pool "p"`)
	mustCheck(t, a)
	if st := statsOf(a, "p", IPv4); st != (stat{0, 0, 0, 2}) {
		t.Fatalf("before SetPool: %+v", st)
	}
	if _, err := a.Allocate("p", IPv4); !errors.Is(err, ErrUnknownPool) {
		t.Fatalf("Allocate from a pool known only by its holdings: %v", err)
	}
	a.SetPool(pool(t, "p", false, "192.0.2.0/29"))
	mustCheck(t, a)
	if st := statsOf(a, "p", IPv4); st != (stat{8, 1, 7, 1}) {
		t.Fatalf("IPv4 after SetPool: %+v", st)
	}
	if st := statsOf(a, "p", IPv6); st != (stat{0, 0, 0, 1}) {
		t.Fatalf("IPv6 after SetPool: %+v", st)
	}
	if got := allocN(t, a, "p", IPv4, 4); !slices.Equal(got, []string{"192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.4"}) {
		t.Fatalf("allocated %v", got)
	}
}

func TestSetPoolShrinkKeepsHeld(t *testing.T) {
	a := New()
	a.SetPool(pool(t, "p", false, "192.0.2.0/28", "2001:db8::/124"))
	allocN(t, a, "p", IPv4, 16)
	allocN(t, a, "p", IPv6, 3)

	a.SetPool(pool(t, "p", false, "192.0.2.0/29", "2001:db8::/124"))
	mustCheck(t, a)
	for i := 8; i < 16; i++ {
		addr := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		if h, ok := a.Holder(addr); !ok || h != "p" {
			t.Fatalf("%s lost its holder after shrinking", addr)
		}
		if a.InPool("p", addr) {
			t.Fatalf("%s still in pool after shrinking", addr)
		}
	}
	if st := statsOf(a, "p", IPv4); st != (stat{8, 8, 0, 8}) {
		t.Fatalf("IPv4 after shrink %+v", st)
	}
	if st := statsOf(a, "p", IPv6); st != (stat{16, 3, 13, 0}) {
		t.Fatalf("IPv6 after shrink %+v", st)
	}
	_, err := a.Allocate("p", IPv4)
	wantErr(t, err, ErrPoolExhausted, "all 8 usable IPv4")

	// An orphan released while cut out is free when the pool grows back;
	// the others are still held and never handed out.
	a.Release(ip("192.0.2.12"))
	a.Release(ip("192.0.2.3"))
	if st := statsOf(a, "p", IPv4); st != (stat{8, 7, 1, 7}) {
		t.Fatalf("IPv4 after releases %+v", st)
	}
	a.SetPool(pool(t, "p", false, "192.0.2.0/28", "2001:db8::/124"))
	mustCheck(t, a)
	if st := statsOf(a, "p", IPv4); st != (stat{16, 14, 2, 0}) {
		t.Fatalf("IPv4 after growing back %+v", st)
	}
	if got := allocN(t, a, "p", IPv4, 2); !slices.Equal(got, []string{"192.0.2.3", "192.0.2.12"}) {
		t.Fatalf("allocated %v", got)
	}
	// Removing a family entirely keeps its addresses as orphans.
	a.SetPool(pool(t, "p", false, "192.0.2.0/28"))
	if st := statsOf(a, "p", IPv6); st != (stat{0, 0, 0, 3}) {
		t.Fatalf("IPv6 after removing the family %+v", st)
	}
	_, err = a.Allocate("p", IPv6)
	wantErr(t, err, ErrNoRangeForFamily, "no IPv6 range")
	mustCheck(t, a)
}

func TestSetPoolUnchangedAndInvalidRanges(t *testing.T) {
	a := New()
	p := pool(t, "p", false, "192.0.2.0/28")
	a.SetPool(p)
	allocN(t, a, "p", IPv4, 3)
	fs := a.pools["p"].fams[v4]
	// Same definition written differently: no rebuild.
	a.SetPool(pool(t, "p", false, "192.0.2.0-192.0.2.7", "192.0.2.8/29", "192.0.2.3/32"))
	if a.pools["p"].fams[v4] != fs {
		t.Fatal("an unchanged pool was rebuilt")
	}
	// Invalid ranges are ignored.
	p.Ranges = append(p.Ranges, Range{First: ip("192.0.2.200"), Last: ip("192.0.2.100")}, Range{})
	a.SetPool(p)
	if st := statsOf(a, "p", IPv4); st != (stat{16, 3, 13, 0}) {
		t.Fatalf("stats %+v", st)
	}
	mustCheck(t, a)
}

func TestDeletePoolKeepsHeld(t *testing.T) {
	a := New()
	a.SetPool(pool(t, "p", false, "192.0.2.0/29"))
	a.SetPool(pool(t, "q", false, "198.51.100.0/29"))
	allocN(t, a, "p", IPv4, 2)

	a.DeletePool("p")
	a.DeletePool("p")
	a.DeletePool("never-set")
	mustCheck(t, a)
	if h, ok := a.Holder(ip("192.0.2.1")); !ok || h != "p" {
		t.Fatalf("Holder after delete = %q %v", h, ok)
	}
	if _, ok := a.PoolContaining(ip("192.0.2.1")); ok {
		t.Fatal("deleted pool still contains its addresses")
	}
	_, err := a.Allocate("p", IPv4)
	wantErr(t, err, ErrUnknownPool, `"p"`)
	if st := statsOf(a, "p", IPv4); st != (stat{0, 0, 0, 2}) {
		t.Fatalf("stats of deleted pool %+v", st)
	}
	// Another pool taking over the range never gets the held addresses.
	a.SetPool(pool(t, "q", false, "198.51.100.0/29", "192.0.2.0/30"))
	if got := allocN(t, a, "q", IPv4, 3); !slices.Equal(got, []string{"192.0.2.2", "192.0.2.3", "198.51.100.0"}) {
		t.Fatalf("q allocated %v", got)
	}
	if st := statsOf(a, "q", IPv4); st != (stat{12, 3, 7, 0}) {
		t.Fatalf("q stats %+v", st)
	}
	// Re-creating the pool adopts its addresses again.
	a.SetPool(pool(t, "p", false, "192.0.2.0/29"))
	if st := statsOf(a, "p", IPv4); st != (stat{8, 2, 4, 0}) {
		t.Fatalf("re-created p %+v", st)
	}
	a.DeletePool("p")
	a.Release(ip("192.0.2.0"))
	a.Release(ip("192.0.2.1"))
	mustCheck(t, a)
	if a.Stats("p") != nil {
		t.Fatal("a deleted pool that holds nothing is still known")
	}
}

func TestAvoidBuggyIPs(t *testing.T) {
	a := New()
	// 198.18.0.0/15 is used only here to cross a /24 boundary inside
	// addresses reserved for tests; no traffic is sent.
	a.SetPool(pool(t, "p", true, "198.18.0.253-198.18.1.2", "2001:db8::ff-2001:db8::100"))
	if st := statsOf(a, "p", IPv4); st != (stat{4, 0, 4, 0}) {
		t.Fatalf("stats %+v", st)
	}
	got := allocN(t, a, "p", IPv4, 4)
	if want := []string{"198.18.0.253", "198.18.0.254", "198.18.1.1", "198.18.1.2"}; !slices.Equal(got, want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	_, err := a.Allocate("p", IPv4)
	wantErr(t, err, ErrPoolExhausted, "all 4 usable")
	wantErr(t, a.Reserve("p", ip("198.18.1.0")), ErrNotInPool, "avoidBuggyIPs excludes addresses ending in .0 or .255")
	wantErr(t, a.Reserve("p", ip("198.18.0.255")), ErrNotInPool, "avoidBuggyIPs")
	if a.InPool("p", ip("198.18.1.0")) {
		t.Fatal("InPool(.0) with avoidBuggyIPs")
	}
	// IPv6 addresses ending in ff or 00 are fine.
	if got := allocN(t, a, "p", IPv6, 2); !slices.Equal(got, []string{"2001:db8::ff", "2001:db8::100"}) {
		t.Fatalf("IPv6 %v", got)
	}

	// Turning it off makes .255 and .0 usable; a held .0 (rebuilt from an
	// IPAllocation) is an orphan while it is on.
	a.SetPool(pool(t, "p", false, "198.18.0.253-198.18.1.2"))
	mustCheck(t, a)
	if st := statsOf(a, "p", IPv4); st != (stat{6, 4, 2, 0}) {
		t.Fatalf("stats after turning off %+v", st)
	}
	if got := allocN(t, a, "p", IPv4, 1); got[0] != "198.18.0.255" {
		t.Fatalf("allocated %v", got)
	}
	a.SetPool(pool(t, "p", true, "198.18.0.253-198.18.1.2"))
	mustCheck(t, a)
	if st := statsOf(a, "p", IPv4); st != (stat{4, 4, 0, 1}) {
		t.Fatalf("stats after turning back on %+v", st)
	}

	// A whole /24 has 254 usable addresses.
	a.SetPool(pool(t, "c", true, "192.0.2.0/24"))
	if st := statsOf(a, "c", IPv4); st != (stat{254, 0, 254, 0}) {
		t.Fatalf("/24 stats %+v", st)
	}
	got = allocN(t, a, "c", IPv4, 254)
	if got[0] != "192.0.2.1" || got[253] != "192.0.2.254" {
		t.Fatalf("/24 allocated %s..%s", got[0], got[253])
	}
}

func TestOverlappingPools(t *testing.T) {
	a := New()
	pa := pool(t, "a", false, "192.0.2.0/28")
	pb := pool(t, "b", true, "192.0.2.8/29", "2001:db8::/64")
	pc := pool(t, "c", false, "198.51.100.0/24", "2001:db8:0:1::/64")
	a.SetPool(pb)
	a.SetPool(pa)
	a.SetPool(pc)
	if !PoolsOverlap(pa, pb) || PoolsOverlap(pa, pc) || PoolsOverlap(pb, pc) || !PoolsOverlap(pb, pb) {
		t.Fatal("PoolsOverlap")
	}
	if p, ok := a.PoolContaining(ip("192.0.2.9")); !ok || p != "a" {
		t.Fatalf("PoolContaining(.9) = %q %v", p, ok)
	}
	if ps := a.PoolsContaining(ip("192.0.2.9")); !slices.Equal(ps, []string{"a", "b"}) {
		t.Fatalf("PoolsContaining(.9) = %v", ps)
	}
	if p, ok := a.PoolContaining(ip("2001:db8:0:1::5")); !ok || p != "c" {
		t.Fatalf("PoolContaining(v6) = %q %v", p, ok)
	}
	if _, ok := a.PoolContaining(ip("203.0.113.1")); ok {
		t.Fatal("PoolContaining of an address in no pool")
	}
	if ps := a.PoolsContaining(ip("2001:db8::1%eth0")); ps != nil {
		t.Fatal("PoolsContaining of a zoned address")
	}

	if got := allocN(t, a, "b", IPv4, 2); !slices.Equal(got, []string{"192.0.2.8", "192.0.2.9"}) {
		t.Fatalf("b allocated %v", got)
	}
	if st := statsOf(a, "a", IPv4); st != (stat{16, 0, 14, 0}) {
		t.Fatalf("a stats %+v", st)
	}
	got := allocN(t, a, "a", IPv4, 14)
	if slices.Contains(got, "192.0.2.8") || slices.Contains(got, "192.0.2.9") {
		t.Fatalf("a got b's addresses: %v", got)
	}
	if _, err := a.Allocate("a", IPv4); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("a not exhausted: %v", err)
	}
	if st := statsOf(a, "b", IPv4); st != (stat{8, 2, 0, 0}) {
		t.Fatalf("b stats %+v", st)
	}
	a.Release(ip("192.0.2.14"))
	if st := statsOf(a, "b", IPv4); st != (stat{8, 2, 1, 0}) {
		t.Fatalf("b stats after a released .14 %+v", st)
	}
	mustCheck(t, a)
}

func TestAllocateNextSkip(t *testing.T) {
	a := New()
	a.SetPool(pool(t, "p", false, "192.0.2.0/30"))
	var offered []string
	taken := map[string]bool{"192.0.2.0": true, "192.0.2.1": true}
	addr, err := a.AllocateNext("p", IPv4, func(x netip.Addr) bool {
		offered = append(offered, x.String())
		return taken[x.String()]
	})
	if err != nil || addr != ip("192.0.2.2") || !slices.Equal(offered, []string{"192.0.2.0", "192.0.2.1", "192.0.2.2"}) {
		t.Fatalf("AllocateNext = %v %v, offered %v", addr, err, offered)
	}
	// Skipped addresses stay free.
	if got := allocN(t, a, "p", IPv4, 1); got[0] != "192.0.2.0" {
		t.Fatalf("allocated %v", got)
	}
	_, err = a.AllocateNext("p", IPv4, func(netip.Addr) bool { return true })
	wantErr(t, err, ErrPoolExhausted, "all 2 free IPv4 addresses were skipped")
	mustCheck(t, a)

	// A skip that rejects everything gives up instead of walking a /64.
	a.SetPool(pool(t, "big", false, "2001:db8::/64"))
	n := 0
	_, err = a.AllocateNext("big", IPv6, func(netip.Addr) bool { n++; return true })
	wantErr(t, err, ErrPoolExhausted, "gave up after skipping 65536")
	if n != MaxSkips {
		t.Fatalf("skip called %d times", n)
	}
}

func TestIPv6LargeStats(t *testing.T) {
	two := func(n uint) *big.Int { return new(big.Int).Lsh(big.NewInt(1), n) }
	a := New()
	a.SetPool(pool(t, "p", false, "2001:db8::/64", "2001:db8:1::/48", "2001:db8::/96"))
	got := allocN(t, a, "p", IPv6, 3)
	if got[2] != "2001:db8::2" {
		t.Fatalf("allocated %v", got)
	}
	if err := a.Reserve("p", ip("2001:db8:1:ffff:ffff:ffff:ffff:ffff")); err != nil {
		t.Fatal(err)
	}
	s := a.Stats("p")[IPv6]
	total := new(big.Int).Add(two(64), two(80))
	if s.Total.Cmp(total) != 0 || s.Allocated.Int64() != 4 || s.Available.Cmp(new(big.Int).Sub(total, big.NewInt(4))) != 0 {
		t.Fatalf("stats total=%s allocated=%s available=%s", s.Total, s.Allocated, s.Available)
	}

	// All of IPv6 except the IPv4-mapped block, which is never usable.
	a.SetPool(Pool{Name: "all", Ranges: []Range{mustRange(t, "::/0")}})
	s = a.Stats("all")[IPv6]
	if want := new(big.Int).Sub(two(128), two(32)); s.Total.Cmp(want) != 0 {
		t.Fatalf("::/0 total %s, want %s", s.Total, want)
	}
	// It overlaps p, whose 4 held addresses are not available to it.
	if want := new(big.Int).Sub(new(big.Int).Sub(two(128), two(32)), big.NewInt(4)); s.Available.Cmp(want) != 0 {
		t.Fatalf("::/0 available %s, want %s", s.Available, want)
	}
	for _, x := range []string{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::fffe:ffff:ffff", "::1:0:0:0"} {
		if err := a.Reserve("all", ip(x)); err != nil {
			t.Fatal(err)
		}
	}
	mustCheck(t, a)
	if got := allocN(t, a, "all", IPv6, 1); got[0] != "::1" {
		t.Fatalf("allocated %v", got)
	}
	a.Release(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
	a.Release(ip("::"))
	mustCheck(t, a)
	if got := allocN(t, a, "all", IPv6, 1); got[0] != "::" {
		t.Fatalf("allocated %v", got)
	}
}

func TestIPv4MappedBlockSkipped(t *testing.T) {
	// A range around the IPv4-mapped block ::ffff:0:0/96 (outside the
	// documentation prefix, but this is arithmetic only): the block is
	// skipped, so the pool has 4 usable addresses.
	a := New()
	a.SetPool(pool(t, "p", false, "::fffe:ffff:fffe-::1:0:0:1"))
	if st := statsOf(a, "p", IPv6); st != (stat{4, 0, 4, 0}) {
		t.Fatalf("stats %+v", st)
	}
	got := allocN(t, a, "p", IPv6, 4)
	if want := []string{"::fffe:ffff:fffe", "::fffe:ffff:ffff", "::1:0:0:0", "::1:0:0:1"}; !slices.Equal(got, want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	if a.InPool("p", ip("::ffff:0.0.0.1")) {
		t.Fatal("InPool of a mapped address")
	}
}

func TestEdgeOfAddressSpace(t *testing.T) {
	a := New()
	// Outside the documentation ranges on purpose: the first and last
	// addresses of each family exercise the arithmetic at 0 and at the top.
	a.SetPool(pool(t, "p", false, "0.0.0.0/31", "255.255.255.254/31", "::/127", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"))
	for _, fam := range []Family{IPv4, IPv6} {
		got := allocN(t, a, "p", fam, 4)
		for i := range got {
			a.Release(ip(got[i]))
			mustCheck(t, a)
			if again := allocN(t, a, "p", fam, 1); again[0] != got[i] {
				t.Fatalf("released %s, got %s", got[i], again[0])
			}
		}
		if _, err := a.Allocate("p", fam); !errors.Is(err, ErrPoolExhausted) {
			t.Fatal(err)
		}
	}
	a.SetPool(pool(t, "b", true, "0.0.0.0/31", "255.255.255.254/31"))
	if st := statsOf(a, "b", IPv4); st != (stat{2, 0, 0, 0}) {
		t.Fatalf("buggy edges %+v", st)
	}
	mustCheck(t, a)
}
