package allocator

import "net/netip"

// Helpers only the tests use: the controller asks AllocateNext,
// PoolsContaining and InPool.

// Allocate holds and returns the lowest free usable address of the family
// in the pool. The choice depends only on the allocator's state.
func (a *Allocator) Allocate(pool string, fam Family) (netip.Addr, error) {
	return a.AllocateNext(pool, fam, nil)
}

// Holder returns the pool holding addr.
func (a *Allocator) Holder(addr netip.Addr) (pool string, ok bool) {
	f, k, err := splitAddr(addr)
	if err != nil {
		return "", false
	}
	if r := a.held[f].find(k); r != nil {
		return r.owner.name, true
	}
	return "", false
}

// PoolContaining returns the pool for which addr is usable (see InPool);
// when pools overlap, the first by name.
func (a *Allocator) PoolContaining(addr netip.Addr) (string, bool) {
	f, k, err := splitAddr(addr)
	if err != nil {
		return "", false
	}
	for _, p := range a.covering(f, k) {
		if p.fams[f].spanIndex(k) >= 0 {
			return p.name, true
		}
	}
	return "", false
}
