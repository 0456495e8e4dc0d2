package allocator

import (
	"cmp"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"sort"
)

// Errors returned by the Allocator. They are wrapped with context; test
// them with errors.Is.
var (
	ErrUnknownPool      = errors.New("unknown pool")
	ErrNoRangeForFamily = errors.New("pool has no usable range for the address family")
	ErrPoolExhausted    = errors.New("pool exhausted")
	ErrInUse            = errors.New("address already in use")
	ErrNotInPool        = errors.New("address not in pool")
	ErrInvalidAddress   = errors.New("invalid address")
)

// InUseError is returned (wrapped) when an address is already held. It
// matches ErrInUse and names the holder, which may be the same pool.
type InUseError struct {
	Addr   netip.Addr
	Holder string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("address %s is already held by pool %q", e.Addr, e.Holder)
}

// Unwrap makes errors.Is(err, ErrInUse) true.
func (e *InUseError) Unwrap() error { return ErrInUse }

// Pool is the allocator's view of an IPPool.
type Pool struct {
	Name   string
	Ranges []Range
	// AvoidBuggyIPs excludes IPv4 addresses ending in .0 or .255: they are
	// never handed out and not counted as available.
	AvoidBuggyIPs bool
}

// PoolsOverlap reports whether any range of a overlaps any range of b.
func PoolsOverlap(a, b Pool) bool {
	for _, ra := range a.Ranges {
		for _, rb := range b.Ranges {
			if ra.Overlaps(rb) {
				return true
			}
		}
	}
	return false
}

// Stats counts the addresses of one family of a pool. Total, Allocated
// and Available cover the pool's usable addresses (its ranges, minus .0/.255
// with AvoidBuggyIPs, minus the IPv4-mapped block ::ffff:0:0/96):
//
//	Total = Allocated + Available + (usable addresses held by overlapping pools)
//
// Orphaned counts addresses this pool holds outside its usable addresses,
// which happens when an edit cut them out; they stay held until released.
type Stats struct {
	Total, Allocated, Available, Orphaned *big.Int
}

// Allocator hands out addresses from pools and remembers which pool holds
// each address. An address is held by at most one pool, also when pools
// overlap. Memory grows with the number of runs of consecutive held
// addresses (at most the number of held addresses), never with pool size,
// and every operation costs O(log n) in the number of runs, however full
// the pool. Pool edits (SetPool, DeletePool) cost O(runs within the pool).
//
// An Allocator is not safe for concurrent use: the caller serializes access
// (the IPAM controller holds its own mutex around it).
type Allocator struct {
	pools map[string]*poolRec
	held  [2]runSet    // per family: held addresses, owner = holding pool
	index [2][]segment // per family: which pools' usable spans cover which addresses
}

// poolRec is a pool the allocator knows, either defined by SetPool or only
// holding addresses (after DeletePool, or ReserveAny for a pool not yet set).
type poolRec struct {
	name       string
	defined    bool
	avoidBuggy bool
	ranges     []Range      // valid ranges as given, for error messages
	fams       [2]*famState // nil when the pool has no range in the family
	held       [2]uint64    // addresses held by this pool, in its ranges or not
}

// famState is one family of a pool. Its usable addresses are numbered
// 0..last ("ordinals") across all its ranges, skipping .0/.255 when
// avoidBuggy and the IPv4-mapped block in IPv6. In ordinal space the usable addresses are contiguous, so the
// first ordinal after a maximal run of taken ordinals is always free: finding
// a free address is one tree lookup, however the pool is fragmented.
type famState struct {
	fam    famIdx
	buggy  bool
	merged []span // the pool's ranges, merged, as keys (off unused)
	spans  []span // usable addresses, sorted, disjoint, first/last usable
	last   u128   // highest ordinal; meaningless if spans is empty
	taken  runSet // ordinals held by any pool
	takenN uint64
	mine   uint64 // ordinals held by this pool
}

// span is an inclusive interval of keys whose first ordinal is off.
type span struct{ first, last, off u128 }

// segment is an interval of keys covered by the same set of pools.
type segment struct {
	first, last u128
	pools       []*poolRec // sorted by name
}

// mappedFirst..mappedLast is the IPv4-mapped IPv6 block ::ffff:0:0/96.
// Kubernetes' IP validation rejects such addresses, so they are never usable.
var mappedFirst, mappedLast = u128{0, 0xffff_0000_0000}, u128{0, 0xffff_ffff_ffff}

// MaxSkips bounds the candidates one AllocateNext call may skip.
const MaxSkips = 1 << 16

// New returns an empty Allocator.
func New() *Allocator { return &Allocator{pools: map[string]*poolRec{}} }

// SetPool adds a pool or replaces its definition. Addresses the pool
// already holds stay held even if the new ranges no longer contain them
// (they count as Orphaned) and are never handed out while held. Invalid
// ranges (see Range.Validate) are ignored: parse them with ParseRanges
// first. Setting an unchanged definition is cheap.
func (a *Allocator) SetPool(p Pool) {
	rec := a.pools[p.Name]
	if rec == nil {
		rec = &poolRec{name: p.Name}
		a.pools[p.Name] = rec
	}
	var byFam [2][]Range
	var ranges []Range
	for _, r := range p.Ranges {
		if r.check() != nil {
			continue
		}
		ranges = append(ranges, r)
		f := famOf(r.First)
		byFam[f] = append(byFam[f], r)
	}
	var merged [2][]span
	same := rec.defined && rec.avoidBuggy == p.AvoidBuggyIPs
	for f := range byFam {
		merged[f] = mergeRanges(byFam[f])
		var old []span
		if rec.fams[f] != nil {
			old = rec.fams[f].merged
		}
		same = same && slices.Equal(old, merged[f])
	}
	rec.ranges = ranges
	if same {
		return
	}
	rec.defined = true
	rec.avoidBuggy = p.AvoidBuggyIPs
	for f := range merged {
		if len(merged[f]) == 0 {
			rec.fams[f] = nil
			continue
		}
		fs := newFamState(famIdx(f), f == int(v4) && p.AvoidBuggyIPs, merged[f])
		a.fillTaken(rec, fs)
		rec.fams[f] = fs
	}
	a.rebuildIndex()
}

// DeletePool forgets a pool's definition. Addresses it holds stay held
// (Holder still names it) until released, so a Service's address survives
// the deletion of its pool; SetPool with the same name adopts them again.
func (a *Allocator) DeletePool(name string) {
	rec := a.pools[name]
	if rec == nil || !rec.defined {
		return
	}
	rec.defined = false
	rec.avoidBuggy = false
	rec.ranges = nil
	rec.fams = [2]*famState{}
	a.rebuildIndex()
	a.forgetIfEmpty(rec)
}

func (a *Allocator) forgetIfEmpty(rec *poolRec) {
	if !rec.defined && rec.held == [2]uint64{} {
		delete(a.pools, rec.name)
	}
}

// AllocateNext is Allocate, but passes each free candidate, lowest first,
// to skip (if not nil); a candidate for which skip returns true is left
// free and the next one is tried. The caller uses it to step over
// addresses it knows are taken elsewhere (e.g. the API server answered
// AlreadyExists) at the cost of one tree lookup per skipped address.
// After MaxSkips skipped candidates it gives up with an error wrapping
// ErrPoolExhausted, so a skip that rejects everything cannot spin through
// a /64.
func (a *Allocator) AllocateNext(pool string, fam Family, skip func(netip.Addr) bool) (netip.Addr, error) {
	rec := a.pools[pool]
	if rec == nil || !rec.defined {
		return netip.Addr{}, fmt.Errorf("allocate %s address from pool %q: %w", fam, pool, ErrUnknownPool)
	}
	f, ok := fam.idx()
	if !ok {
		return netip.Addr{}, fmt.Errorf("allocate from pool %q: unknown address family %q: %w", pool, fam, ErrNoRangeForFamily)
	}
	fs := rec.fams[f]
	if fs == nil {
		return netip.Addr{}, fmt.Errorf("allocate from pool %q: it has no %s range: %w", pool, fam, ErrNoRangeForFamily)
	}
	if len(fs.spans) == 0 {
		return netip.Addr{}, fmt.Errorf("allocate from pool %q: avoidBuggyIPs excludes every address of its %s ranges: %w",
			pool, fam, ErrNoRangeForFamily)
	}
	skipped := 0
	for o := (u128{}); ; o = o.inc() {
		if r := fs.taken.find(o); r != nil {
			if r.end == fs.last {
				break
			}
			o = r.end.inc() // free: runs of taken ordinals are maximal
		}
		k := fs.keyAt(o)
		addr := addrOf(f, k)
		if skip == nil || !skip(addr) {
			a.hold(f, k, rec)
			return addr, nil
		}
		skipped++
		if o == fs.last {
			break
		}
		if skipped >= MaxSkips {
			return netip.Addr{}, fmt.Errorf("allocate from pool %q: gave up after skipping %d free %s addresses: %w",
				pool, skipped, fam, ErrPoolExhausted)
		}
	}
	total := fs.last.big()
	total.Add(total, big.NewInt(1))
	if skipped > 0 {
		return netip.Addr{}, fmt.Errorf("allocate from pool %q: all %d free %s addresses were skipped: %w",
			pool, skipped, fam, ErrPoolExhausted)
	}
	return netip.Addr{}, fmt.Errorf("allocate from pool %q: all %s usable %s addresses are in use: %w",
		pool, total, fam, ErrPoolExhausted)
}

// Reserve holds a specific address for the pool: a requested address, an
// adopted one, or one rebuilt from an IPAllocation at start. The address
// must be usable in the pool (ErrNotInPool otherwise) and not held by any
// pool, this one included (*InUseError, matching ErrInUse).
func (a *Allocator) Reserve(pool string, addr netip.Addr) error {
	rec := a.pools[pool]
	if rec == nil || !rec.defined {
		return fmt.Errorf("reserve %s in pool %q: %w", addr, pool, ErrUnknownPool)
	}
	f, k, err := splitAddr(addr)
	if err != nil {
		return fmt.Errorf("reserve in pool %q: %w", pool, err)
	}
	if fs := rec.fams[f]; fs == nil || fs.spanIndex(k) < 0 {
		why := ""
		if rec.avoidBuggy && f == v4 && !usableV4(k) && slices.ContainsFunc(rec.ranges, func(r Range) bool { return r.Contains(addr) }) {
			why = " (avoidBuggyIPs excludes addresses ending in .0 or .255)"
		}
		return fmt.Errorf("reserve %s in pool %q%s: %w", addr, pool, why, ErrNotInPool)
	}
	if r := a.held[f].find(k); r != nil {
		return fmt.Errorf("reserve in pool %q: %w", pool, &InUseError{Addr: addr, Holder: r.owner.name})
	}
	a.hold(f, k, rec)
	return nil
}

// ReserveAny holds addr for the named pool whether or not the pool is
// defined or contains it. It is for rebuilding state from IPAllocation
// objects: an address an edit cut out of its pool, or held by a pool not
// (yet) known, must stay held. It fails only if addr is invalid or already
// held (*InUseError).
func (a *Allocator) ReserveAny(pool string, addr netip.Addr) error {
	f, k, err := splitAddr(addr)
	if err != nil {
		return fmt.Errorf("reserve for pool %q: %w", pool, err)
	}
	if r := a.held[f].find(k); r != nil {
		return fmt.Errorf("reserve for pool %q: %w", pool, &InUseError{Addr: addr, Holder: r.owner.name})
	}
	rec := a.pools[pool]
	if rec == nil {
		rec = &poolRec{name: pool}
		a.pools[pool] = rec
	}
	a.hold(f, k, rec)
	return nil
}

// Release frees addr. Releasing an address that is not held does nothing.
func (a *Allocator) Release(addr netip.Addr) {
	f, k, err := splitAddr(addr)
	if err != nil {
		return
	}
	owner := a.held[f].removeOne(k)
	if owner == nil {
		return
	}
	owner.held[f]--
	for _, p := range a.covering(f, k) {
		fs := p.fams[f]
		i := fs.spanIndex(k)
		if i < 0 {
			continue
		}
		fs.taken.removeOne(fs.ord(i, k))
		fs.takenN--
		if p == owner {
			fs.mine--
		}
	}
	a.forgetIfEmpty(owner)
}

// InPool reports whether addr is a usable address of the pool, that is
// whether Reserve could hold it for the pool if it were free.
func (a *Allocator) InPool(pool string, addr netip.Addr) bool {
	rec := a.pools[pool]
	f, k, err := splitAddr(addr)
	if rec == nil || err != nil || rec.fams[f] == nil {
		return false
	}
	return rec.fams[f].spanIndex(k) >= 0
}

// PoolsContaining returns every pool for which addr is usable, by name.
func (a *Allocator) PoolsContaining(addr netip.Addr) []string {
	f, k, err := splitAddr(addr)
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range a.covering(f, k) {
		if p.fams[f].spanIndex(k) >= 0 {
			out = append(out, p.name)
		}
	}
	return out
}

// Stats returns the pool's counts for each family in which it has ranges
// or holds addresses; nil for a pool the allocator does not know.
func (a *Allocator) Stats(pool string) map[Family]Stats {
	rec := a.pools[pool]
	if rec == nil {
		return nil
	}
	out := make(map[Family]Stats, 2)
	for f, fs := range rec.fams {
		if fs == nil && rec.held[f] == 0 {
			continue
		}
		st := Stats{Total: new(big.Int), Allocated: new(big.Int), Available: new(big.Int), Orphaned: new(big.Int)}
		var mine uint64
		if fs != nil {
			mine = fs.mine
			if len(fs.spans) > 0 {
				st.Total = fs.last.big()
				st.Total.Add(st.Total, big.NewInt(1))
				st.Available.Sub(st.Total, new(big.Int).SetUint64(fs.takenN))
			}
			st.Allocated.SetUint64(fs.mine)
		}
		st.Orphaned.SetUint64(rec.held[f] - mine)
		out[famIdx(f).family()] = st
	}
	return out
}

// splitAddr validates an address for holding: no zone, not IPv4-mapped.
func splitAddr(addr netip.Addr) (famIdx, u128, error) {
	switch {
	case !addr.IsValid():
		return 0, u128{}, fmt.Errorf("zero address: %w", ErrInvalidAddress)
	case addr.Zone() != "":
		return 0, u128{}, fmt.Errorf("%s has a zone: %w", addr, ErrInvalidAddress)
	case addr.Is4In6():
		return 0, u128{}, fmt.Errorf("%s is IPv4-mapped IPv6; use the IPv4 form: %w", addr, ErrInvalidAddress)
	}
	return famOf(addr), keyOf(addr), nil
}

// hold records k as held by owner, in the global set and in the taken set
// of every pool for which it is usable.
func (a *Allocator) hold(f famIdx, k u128, owner *poolRec) {
	a.held[f].addRun(k, k, owner)
	owner.held[f]++
	for _, p := range a.covering(f, k) {
		fs := p.fams[f]
		i := fs.spanIndex(k)
		if i < 0 {
			continue
		}
		o := fs.ord(i, k)
		fs.taken.addRun(o, o, nil)
		fs.takenN++
		if p == owner {
			fs.mine++
		}
	}
}

// covering returns the pools whose usable spans include k (inner .0/.255
// of avoidBuggy pools included: callers check spanIndex).
func (a *Allocator) covering(f famIdx, k u128) []*poolRec {
	segs := a.index[f]
	i := sort.Search(len(segs), func(i int) bool { return !segs[i].last.less(k) })
	if i < len(segs) && !k.less(segs[i].first) {
		return segs[i].pools
	}
	return nil
}

// rebuildIndex recomputes the segment index from the defined pools' spans.
// It runs on pool edits only.
func (a *Allocator) rebuildIndex() {
	type edge struct {
		at   u128
		open bool
		p    *poolRec
	}
	for f := range a.index {
		var edges []edge
		for _, p := range a.pools {
			fs := p.fams[f]
			if fs == nil {
				continue
			}
			for _, sp := range fs.spans {
				edges = append(edges, edge{sp.first, true, p})
				if !sp.last.isMax() {
					edges = append(edges, edge{sp.last.inc(), false, p})
				}
			}
		}
		slices.SortFunc(edges, func(x, y edge) int { return x.at.cmp(y.at) })
		active := map[*poolRec]int{}
		var segs []segment
		for i := 0; i < len(edges); {
			at := edges[i].at
			for ; i < len(edges) && edges[i].at == at; i++ {
				if edges[i].open {
					active[edges[i].p]++
				} else if active[edges[i].p]--; active[edges[i].p] == 0 {
					delete(active, edges[i].p)
				}
			}
			if len(active) == 0 {
				continue
			}
			last := maxU128
			if i < len(edges) {
				last = edges[i].at.dec()
			}
			pools := make([]*poolRec, 0, len(active))
			for p := range active {
				pools = append(pools, p)
			}
			slices.SortFunc(pools, func(x, y *poolRec) int { return cmp.Compare(x.name, y.name) })
			segs = append(segs, segment{first: at, last: last, pools: pools})
		}
		a.index[f] = segs
	}
}

// fillTaken computes fs.taken, takenN and mine from the held addresses.
func (a *Allocator) fillTaken(rec *poolRec, fs *famState) {
	for i, sp := range fs.spans {
		a.held[fs.fam].ascend(sp.first, func(r *run) bool {
			if sp.last.less(r.start) {
				return false
			}
			lo, hi := maxOf(r.start, sp.first), minU128(r.end, sp.last)
			if fs.buggy {
				var ok bool
				if lo, hi, ok = trimBuggy(lo, hi); !ok {
					return true
				}
			}
			o1, o2 := fs.ord(i, lo), fs.ord(i, hi)
			fs.taken.addRun(o1, o2, nil)
			n := o2.sub(o1).lo + 1 // held runs are built one address at a time: < 2^64
			fs.takenN += n
			if r.owner == rec {
				fs.mine += n
			}
			return true
		})
	}
}
