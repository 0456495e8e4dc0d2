package allocator

import (
	"cmp"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// model is the obviously correct, slow allocator the real one is checked
// against: a map of held addresses and pools enumerated address by address.
type model struct {
	pools  map[string]Pool
	holder map[netip.Addr]string
}

func newModel() *model { return &model{pools: map[string]Pool{}, holder: map[netip.Addr]string{}} }

func (m *model) usable(name string, fam Family) []netip.Addr {
	p, ok := m.pools[name]
	if !ok {
		return nil
	}
	var out []netip.Addr
	for _, r := range p.Ranges {
		if r.Family() != fam {
			continue
		}
		for x := r.First; ; x = x.Next() {
			b := x.AsSlice()
			buggy := p.AvoidBuggyIPs && x.Is4() && (b[3] == 0 || b[3] == 255)
			if !buggy && !x.Is4In6() {
				out = append(out, x)
			}
			if x == r.Last {
				break
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func (m *model) hasRange(name string, fam Family) bool {
	return slices.ContainsFunc(m.pools[name].Ranges, func(r Range) bool { return r.Family() == fam })
}

func (m *model) inPool(name string, addr netip.Addr) bool {
	_, found := slices.BinarySearchFunc(m.usable(name, FamilyOf(addr)), addr, netip.Addr.Compare)
	return found
}

func (m *model) allocate(name string, fam Family, skip func(netip.Addr) bool) (netip.Addr, error) {
	if _, ok := m.pools[name]; !ok {
		return netip.Addr{}, ErrUnknownPool
	}
	if fam != IPv4 && fam != IPv6 || !m.hasRange(name, fam) {
		return netip.Addr{}, ErrNoRangeForFamily
	}
	us := m.usable(name, fam)
	if len(us) == 0 {
		return netip.Addr{}, ErrNoRangeForFamily
	}
	for _, x := range us {
		if _, held := m.holder[x]; !held && (skip == nil || !skip(x)) {
			m.holder[x] = name
			return x, nil
		}
	}
	return netip.Addr{}, ErrPoolExhausted
}

func validHoldable(addr netip.Addr) bool {
	return addr.IsValid() && addr.Zone() == "" && !addr.Is4In6()
}

func (m *model) reserve(name string, addr netip.Addr, anyPool bool) error {
	if _, ok := m.pools[name]; !ok && !anyPool {
		return ErrUnknownPool
	}
	if !validHoldable(addr) {
		return ErrInvalidAddress
	}
	if !anyPool && !m.inPool(name, addr) {
		return ErrNotInPool
	}
	if _, held := m.holder[addr]; held {
		return ErrInUse
	}
	m.holder[addr] = name
	return nil
}

func (m *model) stats(name string) map[Family]stat {
	_, defined := m.pools[name]
	out := map[Family]stat{}
	for _, fam := range []Family{IPv4, IPv6} {
		var st stat
		us := m.usable(name, fam)
		st.total = int64(len(us))
		for _, x := range us {
			switch h, ok := m.holder[x]; {
			case !ok:
				st.available++
			case h == name:
				st.allocated++
			}
		}
		var heldFam int64
		for x, h := range m.holder {
			if h == name && FamilyOf(x) == fam {
				heldFam++
			}
		}
		st.orphaned = heldFam - st.allocated
		if (defined && m.hasRange(name, fam)) || heldFam > 0 {
			out[fam] = st
		}
	}
	if !defined && len(out) == 0 {
		return nil
	}
	return out
}

// Small ranges that overlap, cross a /24 boundary (in 198.18.0.0/15, which
// carries no traffic), cross a 64-bit boundary in IPv6, and touch both ends
// of the address space (arithmetic only: nothing is ever sent).
var modelRanges = []string{
	"192.0.2.0/29", "192.0.2.4-192.0.2.12", "192.0.2.250-192.0.2.255", "192.0.2.0/32",
	"198.18.0.250-198.18.1.5", "198.18.0.255/32", "198.18.1.0/31",
	"0.0.0.0/31", "255.255.255.253-255.255.255.255",
	"2001:db8::/125", "2001:db8::4-2001:db8::c", "2001:db8::ffff:ffff:ffff:fffe-2001:db8:0:1::1",
	"::/127", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127",
}

var modelPools = []string{"a", "b", "c"}

// modelAddrs are the addresses the ops pick from: every address of
// modelRanges, and some that no pool can hold.
func modelAddrs(t testing.TB) []netip.Addr {
	set := map[netip.Addr]bool{
		ip("203.0.113.1"): true, ip("::ffff:192.0.2.1"): true, ip("2001:db8::1%eth0"): true, {}: true,
	}
	for _, s := range modelRanges {
		r := mustRange(t, s)
		for x := r.First; ; x = x.Next() {
			set[x] = true
			if x == r.Last {
				break
			}
		}
	}
	out := make([]netip.Addr, 0, len(set))
	for x := range set {
		out = append(out, x)
	}
	slices.SortFunc(out, func(x, y netip.Addr) int {
		return cmp.Or(x.Compare(y), cmp.Compare(x.Zone(), y.Zone()))
	})
	return out
}

// sameErr reports whether got and the model's sentinel agree.
func sameErr(got, want error) bool {
	if want == nil {
		return got == nil
	}
	return errors.Is(got, want)
}

// runModel applies the ops drawn from next (which returns a number in
// [0, n)) to an Allocator and to the model and fails at the first
// difference. It stops when more returns false.
func runModel(t *testing.T, next func(n int) int, more func() bool) {
	addrs := modelAddrs(t)
	ranges := make([]Range, len(modelRanges))
	for i, s := range modelRanges {
		ranges[i] = mustRange(t, s)
	}
	a, m := New(), newModel()
	var log []string
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("after ops:\n  %s\n%s", joinLines(log), fmt.Sprintf(format, args...))
	}
	for step := 0; more() && step < 400; step++ {
		name := modelPools[next(len(modelPools))]
		fam := []Family{IPv4, IPv6, "IPv7"}[next(3)%3]
		if next(8) != 0 {
			fam = []Family{IPv4, IPv6}[next(2)]
		}
		addr := addrs[next(len(addrs))]
		switch op := next(9); op {
		case 0, 1:
			p := Pool{Name: name, AvoidBuggyIPs: next(2) == 1}
			for range 1 + next(3) {
				p.Ranges = append(p.Ranges, ranges[next(len(ranges))])
			}
			log = append(log, fmt.Sprintf("SetPool(%q, %v, avoid=%v)", name, p.Ranges, p.AvoidBuggyIPs))
			a.SetPool(p)
			m.pools[name] = p
		case 2:
			log = append(log, fmt.Sprintf("DeletePool(%q)", name))
			a.DeletePool(name)
			delete(m.pools, name)
		case 3, 4:
			var skip func(netip.Addr) bool
			if op == 4 {
				mod := 2 + next(3)
				skip = func(x netip.Addr) bool { return x.AsSlice()[len(x.AsSlice())-1]%byte(mod) == 0 }
			}
			got, err := a.AllocateNext(name, fam, skip)
			want, werr := m.allocate(name, fam, skip)
			log = append(log, fmt.Sprintf("Allocate(%q, %s, skip=%v) = %v, %v", name, fam, skip != nil, got, err))
			if got != want || !sameErr(err, werr) {
				fail("Allocate: got %v %v, model %v %v", got, err, want, werr)
			}
		case 5, 6:
			anyPool := op == 6
			var err error
			if anyPool {
				err = a.ReserveAny(name, addr)
			} else {
				err = a.Reserve(name, addr)
			}
			werr := m.reserve(name, addr, anyPool)
			log = append(log, fmt.Sprintf("Reserve(%q, %v, any=%v) = %v", name, addr, anyPool, err))
			if !sameErr(err, werr) {
				fail("Reserve: got %v, model %v", err, werr)
			}
		default:
			// Release a held address most of the time.
			if len(m.holder) > 0 && next(4) != 0 {
				held := make([]netip.Addr, 0, len(m.holder))
				for x := range m.holder {
					held = append(held, x)
				}
				slices.SortFunc(held, netip.Addr.Compare)
				addr = held[next(len(held))]
			}
			log = append(log, fmt.Sprintf("Release(%v)", addr))
			a.Release(addr)
			delete(m.holder, addr)
		}
		if len(log) > 40 {
			log = log[1:]
		}
		if err := a.check(); err != nil {
			fail("invariant: %v", err)
		}
		compareModel(t, a, m, addrs, fail)
	}
}

func compareModel(t *testing.T, a *Allocator, m *model, addrs []netip.Addr, fail func(string, ...any)) {
	t.Helper()
	for _, name := range modelPools {
		got := map[Family]stat{}
		st := a.Stats(name)
		for fam, s := range st {
			got[fam] = stat{s.Total.Int64(), s.Allocated.Int64(), s.Available.Int64(), s.Orphaned.Int64()}
			if sum := new(big.Int).Add(s.Allocated, s.Available); sum.Cmp(s.Total) > 0 {
				fail("pool %q %s: allocated+available > total", name, fam)
			}
		}
		want := m.stats(name)
		if st == nil && want != nil || st != nil && want == nil || fmt.Sprint(got) != fmt.Sprint(want) {
			fail("Stats(%q) = %v, model %v", name, got, want)
		}
	}
	for _, x := range addrs {
		h, ok := a.Holder(x)
		wh, wok := m.holder[x]
		if h != wh || ok != wok {
			fail("Holder(%v) = %q %v, model %q %v", x, h, ok, wh, wok)
		}
		var wantPools []string
		for _, name := range modelPools {
			in := validHoldable(x) && m.inPool(name, x)
			if a.InPool(name, x) != in {
				fail("InPool(%q, %v) = %v", name, x, !in)
			}
			if in {
				wantPools = append(wantPools, name)
			}
		}
		if got := a.PoolsContaining(x); !slices.Equal(got, wantPools) {
			fail("PoolsContaining(%v) = %v, model %v", x, got, wantPools)
		}
		p, ok := a.PoolContaining(x)
		if ok != (len(wantPools) > 0) || ok && p != wantPools[0] {
			fail("PoolContaining(%v) = %q %v, model %v", x, p, ok, wantPools)
		}
	}
}

func joinLines(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += "\n  "
		}
		out += s
	}
	return out
}

// TestAllocatorModel runs long random op sequences with fixed seeds.
func TestAllocatorModel(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 5
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 0x1badcafe))
			runModel(t, r.IntN, func() bool { return true })
		})
	}
}

// FuzzAllocator drives the same comparison from fuzzer-chosen bytes.
func FuzzAllocator(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 3, 0, 0, 0, 0, 3, 0})
	f.Add([]byte("\x01\x00\x00\x00\x00\x01\x02\x04\x05\x06\x07\x08\x00\x00\x00\x03\x00\x00\x00\x00\x03\x00\x00\x08\x08"))
	f.Add(make([]byte, 64))
	f.Add([]byte("allocate release reserve setpool deletepool ipv4 ipv6"))
	f.Fuzz(func(t *testing.T, data []byte) {
		i := 0
		var next func(n int) int
		next = func(n int) int {
			if i >= len(data) {
				return 0
			}
			b := int(data[i])
			i++
			if n > 256 {
				b = b<<8 | next(256)
			}
			return b % n
		}
		runModel(t, next, func() bool { return i < len(data) })
	})
}
